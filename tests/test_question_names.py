import pytest

from prompts.question_names import check_question_names, question_names, subject_terms


@pytest.mark.parametrize(("question", "language", "names"), [
    ("RAG 里的 HyDE（假设文档嵌入）是什么思路？", "zh", ["RAG", "HyDE"]),
    ("Mixtral 8x7B 每个 token 激活几个专家？", "zh", ["Mixtral", "8x7B", "token"]),
    ("ＧＰＴ－３ 有多少参数？", "zh", ["GPT-3"]),  # full-width letters are the same name
    ("AI 是什么？2023 年发布了什么？", "zh", []),  # too short to be sure; numbers are asked about, not named
    ("What does the Q4_K_M type mean in the GGUF format?", "en", ["Q4_K_M", "GGUF"]),
    ("How do Grouped-Query and multi-query attention differ in vLLM?", "en", ["Grouped-Query", "vLLM"]),
    ("Which sampling method keeps only the most probable tokens?", "en", []),  # plain words: never checked
])
def test_names_of_a_question(question: str, language: str, names: list[str]) -> None:
    assert question_names(question, language) == names


@pytest.mark.parametrize("passage", ["gpt3 的参数量是 1750 亿", "GPT 3 有 1750 亿参数", "他们训练了GPT-3。",
                                     "Two GPT-3s were compared"])
def test_a_name_is_found_whatever_its_case_and_separators(passage: str) -> None:
    assert check_question_names("GPT-3 有多少参数？", "zh", [passage]).answerable


@pytest.mark.parametrize("passage", ["ChatGPT-35 is not it", "RAGE 不是 RAG 的复数", "RAGging"])
def test_a_name_inside_a_longer_word_does_not_count(passage: str) -> None:
    check = check_question_names("GPT-3 和 RAG 是什么？", "zh", [passage])
    assert not check.answerable and "GPT-3" in check.missing


def test_only_the_missing_names_are_reported() -> None:
    check = check_question_names("DPO 和 PPO 有什么区别？", "zh", ["RLHF 最后一步用 PPO 优化策略。"])
    assert check.missing == ["DPO"] and not check.answerable


@pytest.mark.parametrize(("question", "terms"), [
    ("投机解码是怎么做的？", ["投机解码"]),
    ("投机解码是如何加速大模型推理的？", ["投机解码"]),
    ("什么是束搜索解码？", []),                      # 束 is a one-character word: no two-word compound
    ("什么是知识蒸馏？", ["知识蒸馏"]),
    ("知识蒸馏有什么缺点？", []),                    # not asked as a thing: a subject before another predicate
    ("借助知识图谱减少幻觉有什么缺点？", []),          # a clause
    ("中國黑龍江省伊春市是著名的林業城市嗎？", []),    # a chain of qualifiers, not one compound
    ("注意力计算的复杂度是什么？", []),               # a 的 phrase is a description
    ("Top-k 采样是什么？", []),                      # a Latin part is a name already
    ("最后一种是谁提出的？", []),                     # a reference to the conversation, not a name
])
def test_the_chinese_term_a_question_asks_about(question: str, terms: list[str]) -> None:
    assert subject_terms(question, "zh") == terms
    assert subject_terms(question, "en") == []


def test_a_chinese_term_is_found_when_each_word_is_written_somewhere() -> None:
    assert check_question_names("投机解码是怎么做的？", "zh", ["对比搜索从模型推理层面缓解解码的重复问题。"]).missing \
        == ["投机解码"]
    assert check_question_names("投机解码是怎么做的？", "zh", ["解码时先用小模型投机地猜几个词"]).answerable
    assert check_question_names("知识蒸馏是什么？", "zh", ["把大模型的知识迁移给小模型的蒸馏方法"]).answerable
    assert check_question_names("投机解码是怎么做的？", "zh", ["解码"], subjects=False).answerable
