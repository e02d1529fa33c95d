"""User-facing labels of the web page (the chat and the workspace pages) in Chinese and English, and the choice
between them."""

from __future__ import annotations

import re

LANGUAGES = ("zh", "en")
AUTO = "auto"

# Any CJK unified ideograph marks a question as Chinese; mixed questions ("RAG 是什么") are Chinese too.
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

_LABELS: dict[str, dict[str, str]] = {
    "title": {"zh": "文档问答", "en": "Document Q&A"},
    "chat_placeholder": {"zh": "就你的文档提问…", "en": "Ask a question about your documents…"},
    "loading": {"zh": "正在加载：{what}（每个进程只加载一次）",
                "en": "Loading {what} (once per process)"},
    "loading_what": {"zh": "知识库、向量模型、重排序与本地大模型",
                     "en": "the knowledge base, embedding model, reranker and local LLM"},
    "retrieving": {"zh": "正在检索相关段落…", "en": "Retrieving passages…"},
    "generating": {"zh": "正在生成回答…", "en": "Generating the answer…"},
    "retrying": {"zh": "模型未找到答案，正在不带拒答选项再问一次…",
                 "en": "The model found no answer; asking once more without the refusal option…"},
    "widening": {"zh": "最相关的资料没有给出经得起核对的答案，正在阅读更多资料…",
                  "en": "The best passages gave no answer that checks out; reading more of them…"},
    "searched_for": {"zh": "检索问题：{question}", "en": "searched for: {question}"},
    "sources": {"zh": "出处", "en": "Sources"},
    "source": {"zh": "出处", "en": "Source"},
    "page": {"zh": "第 {page} 页", "en": "page {page}"},
    "slide": {"zh": "第 {page} 张幻灯片", "en": "slide {page}"},
    "scores": {"zh": "检索与重排序分数", "en": "Retrieval and rerank scores"},
    "score_dense": {"zh": "向量相似度", "en": "dense (cosine)"},
    "score_bm25": {"zh": "BM25", "en": "BM25"},
    "score_fused": {"zh": "融合 (RRF)", "en": "fused (RRF)"},
    "score_rerank": {"zh": "重排序", "en": "rerank"},
    "rank": {"zh": "名次", "en": "rank"},
    "refused": {"zh": "文档中没有找到答案", "en": "The documents do not hold the answer"},
    "closest": {"zh": "最接近的段落（未采用）", "en": "Closest passages considered (not used)"},
    "unsupported": {"zh": "以下句子在所引段落中找不到足够依据：",
                    "en": "These sentences are not well supported by the passages they cite:"},
    "timings": {"zh": "耗时", "en": "Timings"},
    "t_rewrite": {"zh": "改写问题", "en": "rewrite"},
    "t_retrieve": {"zh": "检索", "en": "retrieval"},
    "t_first_token": {"zh": "首字", "en": "first token"},
    "t_generate": {"zh": "生成", "en": "generation"},
    "error": {"zh": "出错了：{error}", "en": "Something went wrong: {error}"},
    "too_long": {"zh": "问题太长（{n} 字，上限 {limit} 字）。", "en": "The question is too long ({n} characters, limit {limit})."},
    # Navigation and what every page shares
    "nav_chat": {"zh": "对话", "en": "Chat"},
    "nav_bases": {"zh": "知识库", "en": "Knowledge bases"},
    "nav_documents": {"zh": "文档", "en": "Documents"},
    "nav_retrieval": {"zh": "检索测试", "en": "Retrieval testing"},
    "kb_choice": {"zh": "当前知识库", "en": "Knowledge base"},
    "kb_choice_several": {"zh": "当前知识库（可多选）", "en": "Knowledge bases (one or several)"},
    "choose_a_base": {"zh": "请在侧栏选择至少一个知识库。", "en": "Choose at least one knowledge base in the sidebar."},
    "upload_into": {"zh": "上传的文件收入「{base}」。", "en": "Uploads go into “{base}”."},
    "caption_base": {"zh": "只根据知识库{bases}中的文档回答，并给出出处。全部在本机运行。",
                     "en": "Answers only from the documents of the knowledge base(s) {bases}, with sources. Runs "
                           "entirely on this machine."},
    "quoted": {"zh": "「{name}」", "en": "“{name}”"},
    "list_sep": {"zh": "、", "en": ", "},
    "col_name": {"zh": "名称", "en": "Name"},
    "col_size": {"zh": "大小", "en": "Size"},
    "col_where": {"zh": "位置", "en": "Where"},
    "delete": {"zh": "删除", "en": "Delete"},
    "working": {"zh": "正在处理…", "en": "Working…"},
    # Knowledge-bases page
    "col_chosen": {"zh": "当前", "en": "Chosen"},
    "col_problem": {"zh": "问题", "en": "Problem"},
    "create_base": {"zh": "新建知识库", "en": "New knowledge base"},
    "base_name": {"zh": "名称（字母、数字、- _ 和空格）", "en": "Name (letters, digits, - _ and spaces)"},
    "create": {"zh": "新建", "en": "Create"},
    "base_created": {"zh": "已新建知识库「{name}」，并切换到它。", "en": "Created “{name}” and switched to it."},
    "chunk_size": {"zh": "段落长度（字符）", "en": "Chunk size (characters)"},
    "chunk_overlap": {"zh": "段落重叠（字符）", "en": "Chunk overlap (characters)"},
    "ocr": {"zh": "识别扫描件和图片 (OCR)", "en": "Read scans and images (OCR)"},
    "manage_base": {"zh": "管理知识库", "en": "Manage a knowledge base"},
    "base": {"zh": "知识库", "en": "Knowledge base"},
    "switch_to": {"zh": "切换到「{name}」", "en": "Switch to “{name}”"},
    "base_switched": {"zh": "对话、文档和检索测试现在使用「{name}」。",
                      "en": "The chat, documents and retrieval testing now use “{name}”."},
    "default_base_note": {"zh": "默认知识库不能改名或删除，它的设置来自配置文件。",
                          "en": "The default knowledge base cannot be renamed or deleted; its settings come from "
                                "the configuration file."},
    "rename": {"zh": "改名", "en": "Rename"},
    "new_name": {"zh": "新名称", "en": "New name"},
    "base_renamed": {"zh": "「{old}」已改名为「{name}」。", "en": "Renamed “{old}” to “{name}”."},
    "base_settings": {"zh": "知识库设置", "en": "Settings of this base"},
    "base_settings_note": {"zh": "对之后收录或重新索引的文档生效；已收录的文档保留原来的段落。",
                           "en": "Apply to documents ingested or re-indexed from now on; documents already in the "
                                 "base keep their chunks."},
    "save": {"zh": "保存", "en": "Save"},
    "base_saved": {"zh": "已保存「{name}」的设置。", "en": "Saved the settings of “{name}”."},
    "delete_base": {"zh": "删除知识库", "en": "Delete the knowledge base"},
    "delete_base_warning": {"zh": "将删除「{name}」及其全部文档和上传的原文件，无法恢复。",
                            "en": "This deletes “{name}” with all its documents and uploaded originals; it cannot be "
                                  "undone."},
    "type_to_confirm": {"zh": "输入「{name}」以确认", "en": "Type “{name}” to confirm"},
    "base_deleted": {"zh": "已删除知识库「{name}」。", "en": "Deleted the knowledge base “{name}”."},
    # Documents page
    "col_type": {"zh": "类型", "en": "Type"},
    "col_pages": {"zh": "页数/幻灯片", "en": "Pages/slides"},
    "col_ingested": {"zh": "收录时间", "en": "Ingested"},
    "col_status": {"zh": "原文件", "en": "Original"},
    "status_ok": {"zh": "未变", "en": "unchanged"},
    "status_changed": {"zh": "已修改（需重新索引）", "en": "changed (re-index it)"},
    "status_missing": {"zh": "已不在原处", "en": "no longer there"},
    "no_documents": {"zh": "这个知识库还没有文档：在上面上传。", "en": "This knowledge base holds no documents yet: "
                                                                   "upload some above."},
    "doc_actions": {"zh": "单个文档", "en": "One document"},
    "document": {"zh": "文档", "en": "Document"},
    "reindex": {"zh": "重新索引", "en": "Re-index"},
    "reindexed": {"zh": "已重新索引「{name}」。", "en": "Re-indexed “{name}”."},
    "download": {"zh": "下载原文件", "en": "Download the original"},
    "show_chunks": {"zh": "「{name}」的段落", "en": "Chunks of “{name}”"},
    "chunks_of": {"zh": "「{name}」共 {n} 个段落", "en": "{n} chunk(s) of “{name}”"},
    "col_heading": {"zh": "标题路径", "en": "Heading path"},
    "col_chars": {"zh": "字符数", "en": "Characters"},
    "col_text": {"zh": "内容", "en": "Text"},
    "delete_documents": {"zh": "删除文档", "en": "Delete documents"},
    "documents_to_delete": {"zh": "要删除的文档", "en": "Documents to delete"},
    "choose_documents": {"zh": "选择文档", "en": "Choose documents"},
    "confirm_delete": {"zh": "确认从知识库删除这 {n} 个文档", "en": "Yes, delete these {n} document(s) from the "
                                                                    "knowledge base"},
    "deleted": {"zh": "已删除：{names}", "en": "Deleted: {names}"},
    # Retrieval-testing page
    "retrieval_caption": {"zh": "看看一个问题能检索到哪些段落、各阶段的分数，以及证据门槛是否放行。这里的设置只用于本次检索。",
                          "en": "See which passages a question retrieves, every stage's score, and whether the "
                                "evidence gate lets it through. These settings apply to this search only."},
    "question": {"zh": "问题", "en": "Question"},
    "search": {"zh": "检索", "en": "Search"},
    "dense_weight": {"zh": "向量权重", "en": "Dense weight"},
    "bm25_weight": {"zh": "BM25 权重", "en": "BM25 weight"},
    "col_evidence": {"zh": "达到门槛", "en": "Clears threshold"},
    "gate_pass": {"zh": "证据门槛放行：最高 {field} 分数 {best} ≥ {threshold}。",
                  "en": "The evidence gate lets it through: best {field} score {best} ≥ {threshold}."},
    "gate_refuse": {"zh": "证据门槛会拒答：{reason}", "en": "The evidence gate would refuse: {reason}"},
    # The cited place on the original (app/web/source_page.py)
    "open_source": {"zh": "在原文中查看", "en": "Open in the original"},
    "source_heading": {"zh": "原文出处", "en": "The cited place"},
    "source_of_pages": {"zh": "第 {page} / {count} 页", "en": "page {page} of {count}"},
    "source_marked": {"zh": "高亮处是回答所引的句子", "en": "The highlight marks the sentence the answer cites"},
    "source_row": {"zh": "所引的行（含表头）", "en": "The cited row with its header"},
    "source_context": {"zh": "在表格中的位置", "en": "Where it is in the sheet"},
    "source_bad_link": {"zh": "这个链接不完整：没有指明段落。请从回答的出处打开。",
                        "en": "This link is incomplete: it names no passage. Open it from an answer's sources."},
    # Sidebar
    "kb": {"zh": "知识库", "en": "Knowledge base"},
    "kb_missing": {"zh": "知识库还是空的：请先上传文档，或运行 `python -m ingest <文件夹>`。",
                   "en": "The knowledge base is empty: upload documents, or run `python -m ingest <folder>`."},
    "kb_documents": {"zh": "文档", "en": "Documents"},
    "kb_chunks": {"zh": "段落", "en": "Chunks"},
    "kb_embedder": {"zh": "向量模型", "en": "Embedder"},
    "kb_llm": {"zh": "大模型", "en": "LLM"},
    "kb_index": {"zh": "索引类型", "en": "Index type"},
    "kb_updated": {"zh": "最后更新", "en": "Last update"},
    "kb_path": {"zh": "位置", "en": "Location"},
    "kb_files": {"zh": "已收录的文档", "en": "Documents in the knowledge base"},
    "language": {"zh": "界面语言", "en": "Interface language"},
    "language_auto": {"zh": "跟随问题", "en": "Follow the question"},
    "retrieval_settings": {"zh": "检索设置", "en": "Retrieval"},
    "generation_settings": {"zh": "生成设置", "en": "Generation"},
    "top_k": {"zh": "返回段落数 (top-k)", "en": "Passages (top-k)"},
    "rerank": {"zh": "重排序", "en": "Rerank"},
    "min_evidence": {"zh": "证据分数阈值（低于则拒答）", "en": "Evidence score threshold (refuse below)"},
    "temperature": {"zh": "温度 (temperature)", "en": "Temperature"},
    "top_p": {"zh": "top-p", "en": "Top-p"},
    "gen_top_k": {"zh": "采样 top-k", "en": "Sampling top-k"},
    "repetition_penalty": {"zh": "重复惩罚", "en": "Repetition penalty"},
    "no_repeat_ngram": {"zh": "禁止重复 n-gram（0 = 关闭）", "en": "No-repeat n-gram (0 = off)"},
    "max_tokens": {"zh": "最大生成长度 (tokens)", "en": "Max new tokens"},
    "new_chat": {"zh": "新对话", "en": "New chat"},
    # Upload
    "upload": {"zh": "上传文档", "en": "Upload documents"},
    "upload_help": {"zh": "单个文件不超过 {mb} MB；支持 {types}",
                    "en": "Up to {mb} MB per file; supported: {types}"},
    "upload_button": {"zh": "加入知识库", "en": "Add to knowledge base"},
    "upload_progress": {"zh": "正在收录 {names}（{percent}%）", "en": "Ingesting {names} ({percent}%)"},
    "upload_done": {"zh": "已收录 {n} 个文件。", "en": "Ingested {n} file(s)."},
    "upload_unchanged": {"zh": "{n} 个文件没有变化，已跳过。", "en": "{n} file(s) unchanged, skipped."},
    "upload_failed": {"zh": "未能收录：", "en": "Could not ingest:"},
    "upload_busy": {"zh": "另一个收录任务正在进行，请稍后再试。", "en": "Another ingest is running; try again shortly."},
}


def detect_language(text: str) -> str:
    """``"zh"`` when the text holds any Chinese character, else ``"en"``."""
    return "zh" if _CJK.search(text or "") else "en"


def choose_language(setting: str, question: str | None, previous: str) -> str:
    """The interface language: a fixed setting wins; on "auto" follow the latest question, else keep ``previous``."""
    if setting in LANGUAGES:
        return setting
    if question:
        return detect_language(question)
    return previous if previous in LANGUAGES else "zh"


def t(key: str, lang: str, **values: object) -> str:
    """The label ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``."""
    text = _LABELS[key]["en" if lang == "en" else "zh"]
    return text.format(**values) if values else text
