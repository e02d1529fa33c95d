"""The reference resolver and the turn structure it reads: real follow-up shapes (Chinese and English), the ones it
must resolve and the ones it must leave to the model."""

from __future__ import annotations

import pytest

from prompts.conversation import Turn
from prompts.reference_resolution import resolve_references
from prompts.turn_structure import compared_pair, list_items, subject_of

DECODING_Q = "常见的解码方法有哪些？"
DECODING_A = "常见的解码方法有贪心搜索、束搜索和 Top-p 采样 [1]。"
STEPS_A = "主要分三步：\n1. **数据清洗**：去掉乱码和重复 [1]\n2. 分词 [1]\n3. 向量化：用嵌入模型编码 [2]"
HERON = Turn("Which formats does the Heron editor export?", "It exports PDF and EPUB [1].")


@pytest.mark.parametrize("text, language, items", [
    (DECODING_A, "zh", ["贪心搜索", "束搜索", "Top-p 采样"]),
    ("星河数据库支持 B 树索引和倒排索引 [1]。", "zh", ["B 树索引", "倒排索引"]),
    (STEPS_A, "zh", ["数据清洗", "分词", "向量化"]),
    ("①数据清洗；②去重；③过滤 [1]", "zh", ["数据清洗", "去重", "过滤"]),
    ("- **步骤1：监督微调（SFT）** —— 用人类回答微调 [1]\n- **步骤2：奖励模型训练** —— 打分 [1]", "zh",
     ["监督微调", "奖励模型训练"]),
    ("第一步：清洗数据 [1]\n第二步：切块 [1]\n第三步：向量化 [2]", "zh", ["清洗数据", "切块", "向量化"]),
    ("Step 1: supervised fine-tuning [1]\nStep 2: reward model [1]", "en", ["supervised fine-tuning", "reward model"]),
    ("It exports PDF and EPUB [1].", "en", ["PDF", "EPUB"]),
    ("The main methods are greedy search, beam search, and nucleus sampling [1].", "en",
     ["greedy search", "beam search", "nucleus sampling"]),
    ("- LoRA\n- Adapter\n- Prefix tuning", "en", ["LoRA", "Adapter", "Prefix tuning"]),
    ("* LoRA\n* Adapter", "en", ["LoRA", "Adapter"]),
    # A nested list describes the item above it: only the top level is listed.
    ("- Encoder-Decoder:\n - 在输入上采用双向注意力\n - 适用任务：理解\n- causal Decoder:\n - 自回归\n- prefix Decoder:", "zh",
     ["Encoder-Decoder", "causal Decoder", "prefix Decoder"]),
    ("芙蓉洞是一个大型溶洞 [1]。", "zh", []),  # nothing listed
    # Items that are sentences, not names: a question nobody asked would be made of them.
    ("1. 先把所有文档按段落切开并去掉页眉页脚和其中的乱码字符\n2. 再把每一段送进嵌入模型得到向量并写入索引文件", "zh", []),
])
def test_list_items(text, language, items):
    assert list_items(text, language) == items


@pytest.mark.parametrize("question, language, pair", [
    ("LoRA 和 Adapter 有什么区别？", "zh", ("LoRA", "Adapter")),
    ("贪心搜索与束搜索哪个更快？", "zh", ("贪心搜索", "束搜索")),
    ("What is the difference between LoRA and adapters?", "en", ("LoRA", "adapters")),
    ("Is beam search or greedy search faster?", "en", ("beam search", "greedy search")),
    ("芙蓉洞是一个什么样的溶洞？", "zh", None),
])
def test_compared_pair(question, language, pair):
    assert compared_pair(question, language) == pair


@pytest.mark.parametrize("question, language, subject", [
    ("芙蓉洞是一个什么样的溶洞？", "zh", "芙蓉洞"),
    ("长谷川町子是谁？", "zh", "长谷川町子"),
    ("星河数据库默认监听哪个端口？", "zh", "星河数据库"),  # an adverb starts the predicate
    ("Top-p 采样是怎样挑选候选词的？", "zh", "Top-p 采样"),
    ("青鸾评测集里有多少道拒答题？", "zh", "青鸾评测集"),
    ("早期 GPT-2 的词表有多大？", "zh", "早期 GPT-2 的词表"),      # the head noun, not its owner
    ("北齐孝昭帝的元皇后是哪里人？", "zh", "北齐孝昭帝的元皇后"),
    ("什么是 RAG？", "zh", ""),            # starts with a question word
    ("它是谁提出的？", "zh", ""),          # a pronoun is no subject
    # A coverb or verb standing alone before the question word is the predicate's (rjieba words: 作用, 常用 stay).
    ("Multi-Query Attention 被哪些模型采用？", "zh", "Multi-Query Attention"),
    ("InstructGPT 的训练被分成哪三个阶段？", "zh", "InstructGPT 的训练"),
    ("RLHF 最后一步用哪种强化学习算法？", "zh", "RLHF 最后一步"),
    ("解码时的温度参数起什么作用？", "zh", "解码时的温度参数"),
    ("可训练的绝对位置编码最被诟病的缺点是什么？", "zh", "可训练的绝对位置编码最被诟病的缺点"),
    ("检索重排的作用是什么？", "zh", "检索重排的作用"),
    ("常用的开源向量库有哪些？", "zh", "常用的开源向量库"),
    ("When was the Yuan dynasty proclaimed?", "en", "the Yuan dynasty"),
    ("Which formats does the Heron editor export?", "en", "the Heron editor"),
    ("How did Warsaw become the capital of Poland?", "en", "Warsaw"),
    ("How does it work?", "en", ""),
])
def test_subject_of(question, language, subject):
    assert subject_of(question, language) == subject


def resolved(message: str, *turns: Turn, language: str = "zh") -> str | None:
    resolution = resolve_references(message, list(turns), language)
    return resolution.text if resolution else None


@pytest.mark.parametrize("message, turn, expected", [
    ("其中第二种方法有什么缺点？", Turn(DECODING_Q, DECODING_A), "束搜索有什么缺点？"),
    ("最后一种是谁提出的？", Turn(DECODING_Q, DECODING_A), "Top-p 采样是谁提出的？"),
    ("第三步用的是什么模型？", Turn("文档入库分几步？", STEPS_A), "向量化用的是什么模型？"),
    ("后者会增加推理延迟吗？", Turn("LoRA 和 Adapter 有什么区别？", "…"), "Adapter会增加推理延迟吗？"),
    ("前者更新哪些矩阵？", Turn("LoRA 和 Adapter 有什么区别？", "…"), "LoRA更新哪些矩阵？"),
    ("它们各自需要训练多少参数？", Turn("LoRA 和 Adapter 有什么区别？", "…"), "LoRA和Adapter各自需要训练多少参数？"),
    ("它什么时候开始对游人开放？", Turn("芙蓉洞是一个什么样的溶洞？", "大型溶洞 [1]"), "芙蓉洞什么时候开始对游人开放？"),
    ("它的简称是什么？", Turn("冰雪皇后是一家什么样的餐厅？", ""), "冰雪皇后的简称是什么？"),
    ("她从师于哪位漫画家？", Turn("长谷川町子是谁？", ""), "长谷川町子从师于哪位漫画家？"),
    ("那其中有多少道题是有答案的？", Turn("青鸾评测集里有多少道拒答题？", "37 道 [1]。"), "青鸾评测集中有多少道题是有答案的？"),
    ("该方法有什么缺点？", Turn("Unlikelihood 训练是怎么缓解复读的？", ""), "Unlikelihood 训练有什么缺点？"),
])
def test_chinese_references_are_resolved(message, turn, expected):
    assert resolved(message, turn) == expected


@pytest.mark.parametrize("message, turn, expected", [
    ("Is the second one free?", HERON, "Is EPUB free?"),
    ("Is the last format free?", HERON, "Is EPUB free?"),
    ("Does the latter add inference latency?", Turn("What is the difference between LoRA and adapters?", ""),
     "Does adapters add inference latency?"),
    ("What was its official name?", Turn("When was the Yuan dynasty proclaimed?", ""),
     "What was the Yuan dynasty's official name?"),
    ("And how does it handle failures?", Turn("What does the Lark scheduler do?", ""),
     "How does the Lark scheduler handle failures?"),
    ("Which of them is fastest?", Turn("What are the main decoding methods?",
                                       "The main methods are greedy search, beam search, and nucleus sampling [1]."),
     "Which of greedy search, beam search and nucleus sampling is fastest?"),
])
def test_english_references_are_resolved(message, turn, expected):
    assert resolved(message, turn, language="en") == expected


def test_what_the_question_enumerates_wins_over_properties_listed_in_the_answers_prose():
    turn = Turn("Flat、IVF 和 HNSW 索引有什么区别？", "Flat 逐一比较，结果精确；HNSW 查询速度快、召回高，但占内存多 [1]。")
    assert resolved("最后一种有什么缺点？", turn) == "HNSW 索引有什么缺点？"
    assert resolved("后者呢？", turn) is None  # three things: no pair
    assert resolved("两者同时使用时先做哪一种？", Turn("Top-k 采样和 Top-p 采样有什么区别？", "…")) \
        == "Top-k 采样和Top-p 采样同时使用时先做哪一种？"


def test_a_passive_subject_is_substituted_without_its_verb():
    assert resolved("那 Grouped-Query Attention 和它有什么区别？", Turn("Multi-Query Attention 被哪些模型采用？", "…")) \
        == "Grouped-Query Attention 和Multi-Query Attention有什么区别？"


def test_the_subject_is_kept_over_a_chain_of_follow_ups():
    turns = [Turn("芙蓉洞是一个什么样的溶洞？", "大型溶洞 [1]"), Turn("它在哪个省？", "重庆 [1]")]
    assert resolved("它什么时候开放？", *turns) == "芙蓉洞什么时候开放？"


@pytest.mark.parametrize("message, turn", [
    ("第五种呢？", Turn(DECODING_Q, DECODING_A)),                       # past the end of the list
    ("这种现象通常被叫作什么问题？", Turn("大模型为什么会反复输出同样的内容？", "…")),  # not a subject, not a list
    ("后者适合什么场景？", Turn(DECODING_Q, DECODING_A)),                 # three items: "the latter" is ambiguous
    ("其他方法呢？", Turn(DECODING_Q, DECODING_A)),                      # 其他 is no reference
    ("RoBERTa 呢？", Turn("BERT 的基础模型有多少参数？", "1.1 亿 [1]")),    # elided, nothing to substitute
    ("它是谁提出的？", Turn("什么是 RAG？", "检索增强生成 [1]")),            # the previous question has no subject
    ("第二种方法有什么缺点？", Turn("芙蓉洞是一个什么样的溶洞？", "大型溶洞 [1]")),  # no list to point into
])
def test_chinese_references_the_text_does_not_settle_are_left_to_the_model(message, turn):
    assert resolved(message, turn) is None


@pytest.mark.parametrize("message, turn", [
    ("What do their users say?", Turn("What does the Lark scheduler do?", "")),
    ("Is the third one free?", HERON),                                   # two formats only
    ("How does it work?", Turn("How does it compare?", "")),             # no subject anywhere
    ("What is the difference between LoRA and adapters?", HERON),        # no reference at all
])
def test_english_references_the_text_does_not_settle_are_left_to_the_model(message, turn):
    assert resolved(message, turn, language="en") is None


def test_no_history_no_resolution():
    assert resolve_references("它的简称是什么？", [], "zh") is None
