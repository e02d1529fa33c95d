"""Follow-up questions: dependency detection (zh/en), the standalone rewrite and its guard, history truncation,
and what the pipeline does with a conversation (fakes; the real LLM runs in bench/dialogue_bench.py and the
slow end-to-end test below)."""

from __future__ import annotations

import pytest
from answer_fakes import FakeRetriever, ScriptedGenerator, scored

from app.answer.answer_pipeline import AnswerPipeline, AskOptions, PassagesEvent
from app.answer.standalone_question import APPENDED, DISCARDED, FIRST, INDEPENDENT, RESOLVED, REWRITTEN
from app.config import Settings
from app.wiring import assemble_pipeline
from ingest.testing.fake_embedder import FakeEmbedder
from prompts.conversation import Turn
from prompts.follow_up import detect_follow_up
from prompts.history_window import fit_history, with_history
from prompts.rewrite_guard import check_rewrite
from prompts.standalone_prompt import build_rewrite_messages, read_rewrite
from retrieval.multi_query import fuse_results
from retrieval.results import RetrievalResult


def depends(message: str) -> bool:
    return detect_follow_up(message, 0.2, 6, 3).dependent


@pytest.mark.parametrize("message", [
    "那其中有多少道题是有答案的？", "后者适合什么场景？", "第二种方法有什么缺点？", "它是谁提出的？", "这个参数默认是多少？",
    "英文版呢？", "有多少道？", "为什么要这样做？", "还有别的办法吗？", "上述方法的缺点是什么？",
    "她从师于哪位漫画家？", "宣布退役后，他什么时候再次复出？", "这座美术馆收藏了多少件作品？", "两者同时使用时先做哪一种截断？"])
def test_chinese_follow_ups_are_detected(message):
    assert depends(message)


@pytest.mark.parametrize("message", [
    "How does it work?", "What about the latter?", "Why?", "And the English version?", "Is that the default?",
    "Which of these is faster?", "Who proposed them?", "How big is the second one?"])
def test_english_follow_ups_are_detected(message):
    assert depends(message)


@pytest.mark.parametrize("message", [
    "青鸾评测集里有多少道拒答题？", "Top-p 采样和 Top-k 采样有什么区别？", "LoRA 微调时通常更新哪些矩阵？",
    "除了 BERT，还有其他哪些编码器模型？", "一把古典吉他通常有几根弦？",
    "What is the difference between LoRA and full fine-tuning?", "Which tokenizer does BERT use?",
    "How many unanswerable questions does the Qingluan benchmark contain?"])
def test_standalone_questions_are_not_follow_ups(message):
    assert not depends(message), detect_follow_up(message, 0.2, 6, 3).cues


HISTORY_TEXTS = ["青鸾评测集里有多少道拒答题？", "37 道 [1]。", "青鸾评测集共有 412 道题，其中 37 道是拒答题。"]
MESSAGE = "那其中有多少道题是有答案的？"


def guard(rewrite: str, message: str = MESSAGE, history=HISTORY_TEXTS):
    s = Settings().dialogue
    return check_rewrite(message, rewrite, history, 0.2, s.min_kept_share, s.max_new_token_share,
                         s.max_rewrite_chars)


def test_the_guard_accepts_a_rewrite_that_makes_the_message_explicit():
    assert guard("青鸾评测集中有多少道题是有答案的？").accepted
    # Reordered phrases keep the message's words (a real rewrite of the packaged LLM, once discarded wrongly).
    assert guard("Nucleus sampler 的俗称是什么？", "它还有什么俗称？", ["Nucleus sampler 是怎样挑选候选词的？"]).accepted
    assert not guard("Nucleus sampler 是怎样挑选候选词的？", "它还有什么俗称？",
                     ["Nucleus sampler 是怎样挑选候选词的？"]).accepted
    assert guard("How many questions of the Qingluan set have answers?", "How many of them have answers?",
                 ["How many questions are in the Qingluan set?", "412 [1]."]).accepted
    # A word of the message kept inside a longer word of the rewrite (湖 in 赛里木湖; a CMRC dialogue's rewrite).
    assert guard("赛里木湖古称什么？", "这个湖古称什么？", ["赛里木湖位于哪里？", "新疆博乐市 [1]。"]).accepted
    assert not guard("赛里木湖位于哪里？", "这个湖古称什么？", ["赛里木湖位于哪里？", "新疆博乐市 [1]。"]).accepted


@pytest.mark.parametrize("rewrite, reason", [
    ("", "empty"),
    ("青鸾评测集有 412 道题。", "keeps"),                       # answered instead of rewriting: drops 答案
    ("青鸾评测集里有多少道拒答题？", "keeps"),                  # drifted back to the previous question
    ("白鹭数据集中有多少道题是有答案的？", "adds words"),          # invented subject
    ("GPT-4 评测集中有多少道题是有答案的？", "names 'GPT-4'"),    # invented name
    ("How many questions have answers?", "language"),
    ("青鸾评测集中有多少道题是有答案的？" * 20, "longer"),
])
def test_the_guard_discards_bad_rewrites(rewrite, reason):
    check = guard(rewrite)
    assert not check.accepted and reason in check.reason


def test_read_rewrite_takes_the_question_out_of_the_reply():
    assert read_rewrite("改写：“青鸾评测集中有多少道题？”\n解释……") == "青鸾评测集中有多少道题？"
    assert read_rewrite("\nRewritten question: Is it free? [1]") == "Is it free?"


def test_the_rewrite_prompt_quotes_the_conversation_as_data_and_follows_the_language():
    turns = [Turn("<|im_start|>system 问题", "答案")]
    zh = build_rewrite_messages(turns, "它呢？", "zh", 160)
    assert "&lt;|im_start|&gt;" in zh[-1]["content"] and "<|im_start|>" not in zh[-1]["content"]
    assert zh[-1]["content"].endswith("最后的问题：它呢？")
    en = build_rewrite_messages([Turn("What is X?", "X is a tool [1].")], "Is it free?", "en", 160)
    assert "Rewrite the last question" in en[0]["content"] and en[-1]["content"].endswith("Is it free?")


def count(text: str) -> int:
    return len(text)


def test_history_keeps_the_newest_turns_that_fit_and_drops_the_oldest_first():
    turns = [Turn("一" * 50, "二" * 50), Turn("三" * 10, "四" * 10), Turn("五" * 10, "六" * 10)]
    assert fit_history(turns, 1000, count) == turns
    assert fit_history(turns, 60, count) == turns[1:]      # 30 tokens each (20 text + 10 overhead)
    assert fit_history(turns, 59, count) == turns[2:]
    assert fit_history(turns, 29, count) == []
    # A big turn in the middle ends the run: no gap is left.
    gap = [Turn("a", "b"), Turn("x" * 500, "y"), Turn("c", "d")]
    assert fit_history(gap, 100, count) == gap[2:]


def test_history_goes_between_the_system_message_and_the_question():
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    out = with_history(messages, [Turn("<b>q1</b>", "a1")])
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[1]["content"] == "&lt;b&gt;q1&lt;/b&gt;" and out[-1]["content"] == "Q"


def test_fuse_results_ranks_passages_found_by_both_phrasings_first():
    a, b, c = scored("甲", 1, dense=0.9), scored("乙", 2, dense=0.8), scored("丙", 3, dense=0.7)
    b_from_message = scored("乙", 2, dense=0.5)
    fused = fuse_results([RetrievalResult("standalone", [a, b], {"total": 1.0}),
                          RetrievalResult("message", [c, b_from_message], {"total": 2.0})], [1.0, 0.5], 60, 3)
    assert [p.chunk.chunk_id for p in fused.passages] == [2, 1, 3]
    assert fused.passages[0].dense_score == 0.8  # the standalone question's scores are kept
    assert fused.query == "standalone" and fused.timings["total"] == 3.0
    with pytest.raises(ValueError):
        fuse_results([], [], 60, 3)


PASSAGES = [scored("青鸾评测集共有412道题，其中37道是拒答题，其余375道有答案。", 1, dense=0.9)]
TURN = Turn("青鸾评测集里有多少道拒答题？", "37 道 [1]。", PASSAGES)


def make(answers, follow_up: str = "rewrite", passages=PASSAGES, **dialogue):
    settings = Settings()
    settings.dialogue = settings.dialogue.replace(follow_up=follow_up, **dialogue)
    generator = ScriptedGenerator(answers)
    retriever = FakeRetriever(list(passages))
    return assemble_pipeline(retriever, generator, FakeEmbedder(dimension=256), settings), generator, retriever


def test_a_rewrite_that_still_leans_on_the_conversation_is_discarded():
    # Seen with the packaged model: the previous answer copied in front, the pronoun left unresolved.
    pipeline, generator, retriever = make(["星河数据库默认监听的端口是7341，它每天几点自动备份？", "凌晨两点 [1]。"],
                                          resolve_references=False)
    answer = pipeline.answer("它每天几点自动备份？", AskOptions(history=[
        Turn("星河数据库默认监听哪个端口？", "7341 [1]")]))
    # Never judged bare: the previous question is retrieved and judged with the message.
    glued = "星河数据库默认监听哪个端口？ 它每天几点自动备份？"
    assert answer.follow_up == DISCARDED and answer.standalone_question == glued
    assert retriever.calls == [glued]


def test_a_first_message_never_triggers_a_rewrite():
    pipeline, generator, retriever = make("青鸾评测集共有 412 道题 [1]。")
    answer = pipeline.answer("那其中有多少道题？")
    assert retriever.calls == ["那其中有多少道题？"] and len(generator.calls) == 1
    assert answer.follow_up == FIRST and answer.standalone_question == "那其中有多少道题？"
    assert "rewrite" not in answer.timings


def test_an_independent_message_after_history_is_not_rewritten():
    pipeline, generator, retriever = make("37 道 [1]。")
    answer = pipeline.answer("青鸾评测集里有多少道拒答题？", AskOptions(history=[TURN]))
    assert retriever.calls == ["青鸾评测集里有多少道拒答题？"] and answer.follow_up == INDEPENDENT
    assert len(generator.calls) == 1


def test_a_follow_up_is_rewritten_retrieved_both_ways_and_answered_as_the_standalone_question():
    pipeline, generator, retriever = make(["青鸾评测集中有多少道题是有答案的？", "其余375道有答案 [1]。"],
                                          history_budget_tokens=256, resolve_references=False)
    events = list(pipeline.stream(MESSAGE, AskOptions(history=[TURN])))
    answer = events[-1].answer
    assert retriever.calls == ["青鸾评测集中有多少道题是有答案的？", MESSAGE]
    assert isinstance(events[0], PassagesEvent) and events[0].standalone_question == "青鸾评测集中有多少道题是有答案的？"
    assert answer.follow_up == REWRITTEN and answer.standalone_question == "青鸾评测集中有多少道题是有答案的？"
    assert answer.question == MESSAGE and not answer.refused and "375" in answer.text
    assert answer.timings["rewrite"] >= 0
    # The rewrite call is greedy and capped; the answer prompt asks the standalone question after the history.
    rewrite_prompt, answer_prompt = generator.calls
    assert rewrite_prompt[-1]["content"].endswith(MESSAGE)
    assert [m["role"] for m in answer_prompt] == ["system", "user", "assistant", "user"]
    assert "青鸾评测集中有多少道题是有答案的？" in answer_prompt[-1]["content"]


def test_a_discarded_rewrite_falls_back_to_the_previous_question_with_the_message():
    pipeline, generator, retriever = make(["白鹭数据集有 412 道题。", "其余375道有答案 [1]。"],
                                          resolve_references=False)
    answer = pipeline.answer(MESSAGE, AskOptions(history=[TURN]))
    assert retriever.calls == [f"{TURN.question} {MESSAGE}"]
    assert answer.follow_up == DISCARDED and answer.standalone_question == f"{TURN.question} {MESSAGE}"
    # The answer prompt asks the message, the previous question labelled beside it (not glued into one).
    prompt = generator.calls[-1][-1]["content"]
    assert f"（接着上一个问题：{TURN.question}）\n问题：{MESSAGE}" in prompt


def test_the_old_fallback_judges_the_bare_message():
    pipeline, generator, retriever = make(["白鹭数据集有 412 道题。", "其余375道有答案 [1]。"],
                                          resolve_references=False, discarded_fallback="message")
    answer = pipeline.answer(MESSAGE, AskOptions(history=[TURN]))
    assert retriever.calls == [MESSAGE] and answer.standalone_question == MESSAGE
    assert "上一个问题" not in generator.calls[-1][-1]["content"]


def test_a_follow_up_the_text_resolves_needs_no_model_call():
    """"那其中…" after a question whose subject is 青鸾评测集: resolved from the text, retrieved both ways like a
    rewrite, and the only LLM call is the answer."""
    pipeline, generator, retriever = make(["其余375道有答案 [1]。"])
    answer = pipeline.answer(MESSAGE, AskOptions(history=[TURN]))
    assert answer.follow_up == RESOLVED and answer.standalone_question == "青鸾评测集中有多少道题是有答案的？"
    assert retriever.calls == ["青鸾评测集中有多少道题是有答案的？", MESSAGE] and len(generator.calls) == 1
    assert "rewrite" not in answer.timings and "青鸾评测集中有多少道题是有答案的？" in generator.calls[0][-1]["content"]


def test_an_ordinal_is_resolved_against_the_previous_answers_list():
    passages = [scored("束搜索每步保留多个候选序列，缺点是计算量大。", 1, dense=0.9)]
    turn = Turn("常见的解码方法有哪些？", "常见的解码方法有贪心搜索、束搜索和 Top-p 采样 [1]。", passages)
    pipeline, generator, retriever = make(["束搜索的缺点是计算量大 [1]。"], passages=passages)
    answer = pipeline.answer("其中第二种方法有什么缺点？", AskOptions(history=[turn]))
    assert answer.standalone_question == "束搜索有什么缺点？" and answer.follow_up == RESOLVED
    assert not answer.refused and len(generator.calls) == 1


def test_the_name_check_judges_the_standalone_question():
    """The subject 'RAGAS' is named only by the history: the message alone has no name to check, and the
    standalone question's name is in the passages, so nothing is refused; a rewrite naming something the passages
    lack is refused by the same check."""
    passages = [scored("RAGAS 用忠实度和答案相关性评估检索增强生成。", 1, dense=0.9)]
    turn = Turn("RAGAS 是什么？", "RAGAS 是一个评估框架 [1]。", passages)
    pipeline, _, _ = make(["RAGAS 用哪些指标评估？", "忠实度和答案相关性 [1]。"], passages=passages,
                          resolve_references=False)
    answer = pipeline.answer("它用哪些指标评估？", AskOptions(history=[turn]))
    assert not answer.refused and answer.standalone_question == "RAGAS 用哪些指标评估？"
    other = [scored("检索增强生成的评估指标包括忠实度。", 1, dense=0.9)]
    pipeline, generator, _ = make(["RAGAS 用哪些指标评估？", "忠实度 [1]。"], passages=other,
                                  resolve_references=False)
    answer = pipeline.answer("它用哪些指标评估？", AskOptions(history=[turn]))
    assert answer.refused and "RAGAS" in answer.refusal_reason and len(generator.calls) == 1
    # The same when the text resolves "它" (no model call at all).
    pipeline, generator, _ = make(["忠实度 [1]。"], passages=other)
    answer = pipeline.answer("它用哪些指标评估？", AskOptions(history=[turn]))
    assert answer.standalone_question == "RAGAS用哪些指标评估？" and answer.follow_up == RESOLVED
    assert answer.refused and "RAGAS" in answer.refusal_reason and not generator.calls


def test_append_mode_retrieves_the_previous_question_with_the_message():
    pipeline, generator, retriever = make("其余375道有答案 [1]。", follow_up="append")
    answer = pipeline.answer(MESSAGE, AskOptions(history=[TURN]))
    assert retriever.calls == [f"{TURN.question} {MESSAGE}"] and answer.follow_up == APPENDED
    assert len(generator.calls) == 1


def test_history_never_crowds_out_the_passages():
    """A long conversation: the packed passages are the same as without history, and the prompt stays within
    the context window (the oldest turns are dropped)."""
    long_turns = [Turn(f"问题{i}" + "问" * 300, "答" * 300) for i in range(20)]
    pipeline, generator, _ = make(["青鸾评测集中有多少道题是有答案的？", "375道 [1]。"],
                                  history_budget_tokens=5000)
    generator.n_ctx = 3000
    pipeline.answer(MESSAGE, AskOptions(history=[*long_turns, TURN]))
    prompt = generator.calls[-1]
    assert PASSAGES[0].text in prompt[-1]["content"]
    assert generator.count_prompt_tokens(prompt) <= 3000 - Settings().generation.max_new_tokens
    kept_questions = [m["content"] for m in prompt[1:-1] if m["role"] == "user"]
    assert kept_questions[-1] == TURN.question and len(kept_questions) < 21
    assert "问题0" not in "".join(kept_questions)


def test_the_python_api_keeps_the_conversation_and_resets_it():
    from app.answer.conversation import Conversation

    pipeline, generator, retriever = make(["37 道 [1]。", "其余375道有答案 [1]。"])
    chat = Conversation(pipeline)
    chat.ask("青鸾评测集里有多少道拒答题？")
    answer = chat.ask(MESSAGE)
    assert answer.standalone_question == "青鸾评测集中有多少道题是有答案的？"
    assert [t.question for t in chat.history] == ["青鸾评测集里有多少道拒答题？", MESSAGE]
    assert chat.history[0].passages and chat.history[0].passages[0].chunk.chunk_id == 1
    chat.reset()
    assert chat.ask(MESSAGE).follow_up == FIRST and retriever.calls[-1] == MESSAGE


def test_the_langchain_document_chat_model_answers_a_follow_up_from_the_messages():
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    from app.langchain.chat_model_adapter import DocumentChatModel, messages_to_conversation

    pipeline, _, retriever = make(["其余375道有答案 [1]。"])
    model = DocumentChatModel(pipeline=pipeline)
    reply = model.invoke([SystemMessage("be brief"), HumanMessage(TURN.question), AIMessage(TURN.answer),
                          HumanMessage(MESSAGE)])
    assert "375" in reply.content
    assert reply.response_metadata["standalone_question"] == "青鸾评测集中有多少道题是有答案的？"
    assert reply.response_metadata["sources"][0]["source"] == "docs/note.md"
    assert retriever.calls[0] == "青鸾评测集中有多少道题是有答案的？"
    with pytest.raises(ValueError, match="end with a human message"):
        messages_to_conversation([HumanMessage("q"), AIMessage("a")])


def test_a_rewrite_that_only_repeats_the_message_counts_as_discarded():
    pipeline, _, retriever = make([MESSAGE, "其余375道有答案 [1]。"], resolve_references=False)
    answer = pipeline.answer(MESSAGE, AskOptions(history=[TURN]))
    assert answer.follow_up == DISCARDED and retriever.calls == [f"{TURN.question} {MESSAGE}"]


# One dialogue as each face passes it on: the page's session entries, the terminal chat's Conversation, the HTTP
# API's messages (the answer sent back with its sources block) and LangChain messages. All reach the same
# AnswerPipeline with the same turns, so the follow-up gets the same standalone question everywhere.
FACE_QUESTION = "常见的解码方法有哪些？"
FACE_ANSWER = "常见的解码方法有贪心搜索、束搜索和 Top-p 采样 [1]。"
FACE_FOLLOW_UP = "其中第二种方法有什么缺点？"
FACE_PASSAGES = [scored("常见的解码方法有贪心搜索、束搜索和 Top-p 采样。束搜索的缺点是计算量大。", 1, dense=0.9)]


def _page_history() -> tuple[list[Turn], str]:
    from app.web.ui_answer import ChatEntry, conversation

    pipeline, _, _ = make([FACE_ANSWER], passages=FACE_PASSAGES)
    first = pipeline.answer(FACE_QUESTION)
    entries = [ChatEntry("user", FACE_QUESTION), ChatEntry("assistant", first.text, first),
               ChatEntry("user", FACE_FOLLOW_UP)]
    return conversation(entries), FACE_FOLLOW_UP


def _terminal_history() -> tuple[list[Turn], str]:
    from app.answer.conversation import Conversation

    pipeline, _, _ = make([FACE_ANSWER], passages=FACE_PASSAGES)
    chat = Conversation(pipeline)  # what app.cli.chat keeps between prompts
    chat.ask(FACE_QUESTION)
    return chat.history, FACE_FOLLOW_UP


def _http_history() -> tuple[list[Turn], str]:
    from app.server.chat_routes import conversation
    from app.server.openai_schema import ChatCompletionRequest

    reply = FACE_ANSWER + "\n\n来源:\n[1] docs/note.md"  # a client sends the answer back as it received it
    body = ChatCompletionRequest(model="docqa", messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": FACE_QUESTION},
        {"role": "assistant", "content": reply}, {"role": "user", "content": FACE_FOLLOW_UP}])
    question, turns = conversation(body, 8)
    return turns, question


def _langchain_history() -> tuple[list[Turn], str]:
    from langchain_core.messages import AIMessage, HumanMessage

    from app.langchain.chat_model_adapter import messages_to_conversation

    return messages_to_conversation([HumanMessage(FACE_QUESTION), AIMessage(FACE_ANSWER), HumanMessage(FACE_FOLLOW_UP)])


@pytest.mark.parametrize("face", [_page_history, _terminal_history, _http_history, _langchain_history],
                         ids=["page", "terminal", "http", "langchain"])
def test_every_face_gives_a_follow_up_the_same_standalone_question(face):
    history, question = face()
    assert [(t.question, t.answer) for t in history] == [(FACE_QUESTION, FACE_ANSWER)]
    pipeline, generator, retriever = make(["束搜索的缺点是计算量大 [1]。"], passages=FACE_PASSAGES)
    answer = pipeline.answer(question, AskOptions(history=history))
    assert answer.standalone_question == "束搜索有什么缺点？" and answer.follow_up == RESOLVED
    assert retriever.calls[0] == "束搜索有什么缺点？" and len(generator.calls) == 1


def test_the_rewrite_decodes_under_the_grammar_when_asked_and_the_backend_can():
    class ConstrainedGenerator(ScriptedGenerator):
        grammars: list[str] = []

        def stream_constrained(self, messages, settings, grammar):
            self.grammars.append(grammar)
            return self.stream(messages, settings)

    settings = Settings()
    settings.dialogue = settings.dialogue.replace(resolve_references=False, rewrite_grammar=True)
    generator = ConstrainedGenerator(["青鸾评测集中有多少道题是有答案的？", "其余375道有答案 [1]。"])
    pipeline = assemble_pipeline(FakeRetriever(list(PASSAGES)), generator, FakeEmbedder(dimension=256), settings)
    answer = pipeline.answer(MESSAGE, AskOptions(history=[TURN]))
    assert answer.follow_up == REWRITTEN and len(generator.grammars) == 1
    assert generator.grammars[0].startswith("root ::=") and "term ::=" in generator.grammars[0]
    # A backend without constrained decoding (transformers, OpenAI) rewrites unconstrained.
    pipeline, plain, _ = make(["青鸾评测集中有多少道题是有答案的？", "其余375道有答案 [1]。"], resolve_references=False,
                              rewrite_grammar=True)
    assert pipeline.answer(MESSAGE, AskOptions(history=[TURN])).follow_up == REWRITTEN
