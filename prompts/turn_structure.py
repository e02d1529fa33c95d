"""The structure of an earlier turn that a follow-up can point into: the items its question or answer lists
("1. …", "①…", markdown bullets, "A、B和C", "A, B and C"), the two things its question compares ("A和B有什么区别",
"the difference between A and B") and its subject ("芙蓉洞是…" → 芙蓉洞, "What does the Lark scheduler do?" → the
Lark scheduler). Plain text rules, no model: what they cannot read is left to the LLM rewrite.

Every item is a short name-like phrase: an item wider than ``MAX_ITEM_WIDTH`` (a step described in a sentence)
is not offered, because putting a sentence where "第三步" stood makes a question nobody asked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import rjieba

from prompts.language import _CJK

# An item, subject or compared thing wider than this is a description, not a name (a CJK character counts two:
# 20 Chinese characters, 40 English ones).
MAX_ITEM_WIDTH = 40
MIN_ITEMS = 2

_CITATION = re.compile(r"\s*\[\d+\](?:\s*\[\d+\])*")
# A numbered or bulleted line: "1. …", "1、…", "(1) …", "（1）…", "① …", "- …", "* …", "• …", "步骤1：…", "第一步：…",
# "Step 1: …" (markdown emphasis around the number is dropped first).
_STEP = (r"(?:(?:步骤|阶段)\s*\d{1,2}\s*[:：.、]|第[一二三四五六七八九十\d]{1,2}(?:步|阶段|点|种|类)\s*[:：.、，,]|"
         r"(?:step|stage)\s*\d{1,2}\s*[:.]?)")
_LINE_ITEM = re.compile(rf"^\s*(?:(?:\d{{1,2}}\s*[.、)）]|[（(]\d{{1,2}}[)）]|[\u2460-\u2473]|[-*•·])\s*{_STEP}?|{_STEP})"
                        r"\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
# Inline numbering inside one line: "①…②…", "(1)…(2)…", "1) … 2) …".
_INLINE_MARK = re.compile(r"[\u2460-\u2473]|[（(]\d{1,2}[)）]|(?<![\w.])\d{1,2}[)）]")
# Where an item's name ends: the description after a colon, a dash, a comma, a parenthesis.
_NAME_END = re.compile(r"\s*(?:[:：]|——|\s[-–—]\s|[，,；;。.!！?？（(]).*$", re.DOTALL)
_MARKDOWN = re.compile(r"[*_`#]+")
_EMPHASIS = re.compile(r"\*\*|__|`")  # not a single "*": it may be the line's bullet

# Chinese: what introduces a list ("有 A、B 和 C", "包括 A、B", "分为 A 和 B") and what joins its last item.
_ZH_INTRO = re.compile(r"^.*?(?:包括|包含|分为|分成|有|是|为|如|例如|比如|像|支持|采用|使用|用到|用了|提供|涉及|即)")
_ZH_AND = re.compile(r"以及|和|与|及|或者|或|跟")
_ZH_CLAUSE = re.compile(r"[，,。；;：:！!？?\n]")
# Where the last item of "A、B和C有什么区别" ends: the predicate after it.
_ZH_AFTER_LAST = re.compile(r"\s*(?:有什么|有哪些|有何|的区别|的差别|之间|哪|各自|分别|都|相比|比较|对比|怎么|如何|为什么|是).*$")
_ZH_TAIL = re.compile(r"(?:等等|等|这)?(?:[两二三四五六七八九十几]+)?(?:种|个|类|项|点|步|部分)?(?:方法|方式|技术|策略)?$")
# The pair a Chinese question compares: "A和B有什么区别", "A与B哪个更…", "A还是B", "A比B…", "A跟B相比".
_ZH_PAIR = re.compile(r"^(?:请问|那么?|比较一下|比较|对比一下|对比)?\s*(?P<a>[^，,。？?]+?)\s*(?:和|与|跟|同|还是|比|对比|vs\.?|VS)\s*"
                      r"(?P<b>[^，,。？?]+?)\s*(?:的|之间|相比|比较|对比|哪|谁|有|在|各|分别|都|是|，|,|？|\?|$)")
# The subject of a Chinese question: the words before its first predicate or question word. "的" does not end it:
# "早期 GPT-2 的词表有多大" is about the vocabulary ("它" after it is the vocabulary, not GPT-2).
_ZH_LEAD = re.compile(r"^(?:请问|那么?|所以|另外|再问一下|我想知道|你知道)\s*[，,]?\s*")
# (One-character predicates that also occur inside names are left out: 对 in 绝对, 用 in 常用, 于 in 基于.)
_ZH_PREDICATE = re.compile(r"是|有|怎么|怎样|如何|为什么|为何|能|会|可以|支持|采用|属于|包括|主要|一般|通常|"
                           r"最早|最大|最多|在|什么|哪|多少|几|由谁|被称|被用|对于|用于|用来|从哪|叫做|称为|何时|"
                           r"源自|来自|始建|位于|默认|大约|总共|一共|每天|目前|现在|已经|曾经|最初|首先")
_ZH_QUESTION_START = re.compile(r"^(?:什么|哪|为什么|为何|怎么|怎样|如何|谁|多少|几|是否|有没有|能否|请)")
# Endings that are not part of the subject: "青鸾评测集里", "微调大模型时", "生成温度这个参数" (an apposition).
_ZH_SUBJECT_TAIL = re.compile(r"(?:里|中|内|里面|当中|时|的时候|这(?:个|种|类|项)[\u4e00-\u9fff]{0,4})$")
# A verb or coverb standing alone before the question word belongs to the predicate, not the subject: "X 被哪些
# 模型采用" (passive 被, also "被分成哪三个阶段": 被 and the one verb after it), "X 最后一步用哪种算法", "第二步用的是
# 哪个", "温度参数起什么作用". Read on rjieba's words, so 作用, 常用, 信用, 被子 stay whole.
_ZH_VERB_WORDS = frozenset({"被", "用", "起", "把", "将", "给", "让"})
_ZH_PASSIVE = "被"

# English: what introduces a list and the pair an English question compares.
_EN_INTRO = re.compile(r"^.*?\b(?:are|is|were|was|include|includes|including|such as|like|between|supports?|uses?|offers?|"
                       r"exports?|has|have|provides?|namely)\b\s*:?\s*", re.IGNORECASE)
_EN_CLAUSE = re.compile(r"[.;:!?\n]")
_EN_SPLIT = re.compile(r"\s*,\s*(?:and|or)\s+|\s*,\s*|\s+(?:and|or)\s+", re.IGNORECASE)
_EN_PAIR = re.compile(r"\b(?:between|compare|comparing)\s+(?P<a>.+?)\s+(?:and|with|to)\s+(?P<b>.+?)\s*(?:[?,.]|$)|"
                      r"^(?:is|are|does|do|should|which is \w+,?)\s+(?P<c>.+?)\s+(?:or|vs\.?|versus)\s+"
                      r"(?P<d>.+?)\s*(?:\s(?:\w+er|more|less|better|worse)\b.*)?(?:[?,.]|$)", re.IGNORECASE)
_EN_SUBJECT = re.compile(r"^\s*(?:what|when|who|whom|where|why|how|which|whose)(?:\s+\w+)?\s+"
                         r"(?P<aux>is|are|was|were|does|do|did|can|could|has|have|had|will|would|should)\s+"
                         r"(?P<np>.+)$",
                         re.IGNORECASE)
_EN_SUBJECT_START = re.compile(r"^\s*(?P<aux>is|are|was|were|does|do|did|can|has|have)\s+(?P<np>.+)$",
                               re.IGNORECASE)
# Where an English subject ends: a verb-like word, a preposition that starts the predicate, the question mark.
# (Participles are listed, not matched by -ed/-ing: "nucleus sampling", "a trained position embedding" are nouns.)
_EN_NP_END = re.compile(r"\s+(?:do|be|become|use|used|work|mean|have|make|made|get|handle|support|differ|"
                        r"compare|come|go|take|cost|need|run|help|store|call|called|say|said|known|based|invented|"
                        r"proposed|described|founded|built|written|proclaimed|located|first|last|"
                        r"in|on|at|for|from|by|with|to|into|about|after|before|when|than|that|which|so)\b.*$|[?.!]\s*$",
                        re.IGNORECASE)
_EN_MODALS = ("can", "could", "will", "would", "should")
_EN_VERB = re.compile(r"(?:do|be|become|use|work|mean|have|make|get|handle|support|differ|compare|come|go|take|cost|"
                      r"need|run|help|store|call|say)\b", re.IGNORECASE)
_EN_PRONOUN_NP = re.compile(r"^(?:it|its|they|them|this|that|these|those|he|she|his|her|their)\b", re.IGNORECASE)


@dataclass
class TurnStructure:
    """What a follow-up can refer to in the previous turn."""

    items: list[str] = field(default_factory=list)  # listed by the answer, else by the question
    pair: tuple[str, str] | None = None  # the two things the question compares (or a two-item list)
    subject: str = ""  # the question's subject ("" when none could be read)


def _clean(item: str) -> str:
    item = _MARKDOWN.sub("", _CITATION.sub("", item)).strip()
    return item.strip(" \t\"'“”‘’「」《》")


def _name_of(item: str) -> str:
    """An item's name: the words before its description ("Top-p 采样：从累计概率…" → "Top-p 采样")."""
    return _clean(_NAME_END.sub("", _clean(item)))


def _too_wide(text: str) -> bool:
    return len(text) + len(_CJK.findall(text)) > MAX_ITEM_WIDTH


def _usable(items: list[str]) -> list[str]:
    names = [_name_of(i) for i in items]
    if len(names) < MIN_ITEMS or any(not n or _too_wide(n) for n in names):
        return []
    return names


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _line_run(text: str) -> list[str]:
    """The first run of numbered or bulleted lines at one level, as written (lines indented deeper, a nested
    list or a wrapped description, belong to the item above)."""
    run: list[str] = []
    level = 0
    for line in text.splitlines():
        if run and line.strip() and _indent(line) > level:
            continue
        m = _LINE_ITEM.match(_EMPHASIS.sub("", line))
        if m:
            if not run:
                level = _indent(line)
            run.append(m.group(1))
        elif run and line.strip():
            if len(run) >= MIN_ITEMS:
                break
            run = []
    return run if len(run) >= MIN_ITEMS else []


def _inline_items(text: str) -> list[str]:
    for line in text.splitlines():
        marks = list(_INLINE_MARK.finditer(line))
        if len(marks) >= MIN_ITEMS:
            ends = [m.start() for m in marks[1:]] + [len(line)]
            return _usable([line[m.end():end].strip(" ；;，,。") for m, end in zip(marks, ends)])
    return []


def _zh_enumeration(text: str) -> list[str]:
    """"A、B和C" (or "A和B" after a list-introducing verb) in the first clause that has one."""
    for clause in _ZH_CLAUSE.split(_CITATION.sub("", text)):
        if "、" not in clause and not _ZH_AND.search(clause):
            continue
        # The verb that introduces the list stands before its first item ("有什么区别" after it is no intro).
        head = clause[:clause.index("、")] if "、" in clause else clause
        intro = _ZH_INTRO.match(head)
        if "、" not in clause and not intro:
            continue
        body = clause[intro.end():] if intro else clause
        parts = body.split("、")
        last = _ZH_AND.split(parts[-1])
        items = [p.strip() for p in parts[:-1] + last]
        items[-1] = _ZH_TAIL.sub("", _ZH_AFTER_LAST.sub("", items[-1])).strip()
        if intro is None:  # "A、B和C都…": the first item starts the clause
            items[0] = items[0].strip()
        names = _usable(items)
        if names:
            return names
    return []


def _en_enumeration(text: str) -> list[str]:
    for clause in _EN_CLAUSE.split(_CITATION.sub("", text)):
        if not re.search(r",|\b(?:and|or)\b", clause):
            continue
        intro = _EN_INTRO.match(clause)
        if not intro:
            continue
        items = [re.sub(r"^(?:both|either)\s+", "", p, flags=re.IGNORECASE)
                 for p in _EN_SPLIT.split(clause[intro.end():].strip())]
        names = _usable([p for p in items if p])
        if names:
            return names
    return []


def _marked_items(text: str) -> list[str] | None:
    """Items of a numbered or bulleted list (None when ``text`` has none; [] when it lists descriptions)."""
    run = _line_run(text)
    if run:  # a numbered list of descriptions lists no names; its sentences are not read for "A和B" either
        return _usable(run)
    return _inline_items(text) or None


def _enumerated_items(text: str, language: str) -> list[str]:
    return _zh_enumeration(text) if language == "zh" else _en_enumeration(text)


def list_items(text: str, language: str) -> list[str]:
    """The items ``text`` lists, in order (empty when it lists nothing, or lists descriptions, not names)."""
    marked = _marked_items(text)
    return marked if marked is not None else _enumerated_items(text, language)


def compared_pair(question: str, language: str) -> tuple[str, str] | None:
    """The two things ``question`` compares, or None."""
    text = _CITATION.sub("", question).strip()
    if language == "zh":
        m = _ZH_PAIR.match(_ZH_LEAD.sub("", text))
        a, b = (m.group("a"), m.group("b")) if m else ("", "")
    else:
        m = _EN_PAIR.search(text)
        a, b = ((m.group("a") or m.group("c") or ""), (m.group("b") or m.group("d") or "")) if m else ("", "")
    a, b = _clean(a), _clean(b)
    if not a or not b or _too_wide(a) or _too_wide(b) or a == b or "、" in a + b or "," in a + b:  # 3+ things
        return None
    return a, b


def _without_verb_tail(subject: str) -> str:
    """``subject`` without a trailing coverb or verb word (_ZH_VERB_WORDS): "Multi-Query Attention 被" →
    "Multi-Query Attention", "RLHF 最后一步用" → "RLHF 最后一步", "InstructGPT 的训练被分成" → "InstructGPT 的训练"."""
    words = rjieba.cut(subject)
    end = len(words)
    if end >= 2 and words[-1] == "的" and words[-2] in _ZH_VERB_WORDS:  # "第二步用的是哪个"
        end -= 1
    if end >= 1 and words[end - 1] in _ZH_VERB_WORDS:
        end -= 1
    elif end >= 2 and words[end - 2] == _ZH_PASSIVE:
        end -= 2
    return "".join(words[:end]).strip()


def subject_of(question: str, language: str) -> str:
    """The subject of ``question`` ("" when it starts with a question word or a pronoun, or is too long)."""
    text = _CITATION.sub("", question).strip()
    if language == "zh":
        text = _ZH_LEAD.sub("", text)
        if _ZH_QUESTION_START.match(text):
            return ""
        m = _ZH_PREDICATE.search(text)
        subject = _ZH_SUBJECT_TAIL.sub("", _without_verb_tail(text[:m.start()] if m else "")).strip()
        # A pronoun is no subject; two things joined are a pair ("它" after them is ambiguous).
        if len(subject) < 2 or re.search(r"[它他她这那其该此和与跟、]", subject):
            return ""
    else:
        m = _EN_SUBJECT.match(text) or _EN_SUBJECT_START.match(text)
        if not m:
            return ""
        np = m.group("np").strip()
        aux = m.group("aux").lower()
        if aux in _EN_MODALS and not re.match(r"(?:(?:the|a|an)\b|[A-Z0-9])", np):
            return ""  # "what disorders can affect the immune system?": a verb follows, the subject came before
        end = _EN_NP_END.search(np)
        subject = np[:end.start()].strip() if end else np
        if aux in ("do", "does", "did") and not (end and _EN_VERB.match(end.group().strip())):
            # do-support puts the main verb after the subject: "which formats does the editor export?", "what
            # does RLHF stand for?"
            subject = subject.rpartition(" ")[0]
        if (not subject or _EN_PRONOUN_NP.match(subject) or re.search(r"\b(?:and|or)\b", subject)
                or subject.lower() in ("a", "an", "the") or subject.endswith(("'s", "'"))):
            return ""
    return "" if _too_wide(subject) else subject


def turn_structure(question: str, answer: str, language: str) -> TurnStructure:
    """The items, compared pair and subject of one earlier turn."""
    # An answer's numbered list first, then what the question itself enumerates ("Flat、IVF 和 HNSW 有什么区别"), then
    # an enumeration inside the answer's prose (less sure: "查询速度快、召回高" lists properties, not the things asked).
    marked = _marked_items(answer)
    items = marked or list_items(question, language) or (_enumerated_items(answer, language) if marked is None else [])
    pair = compared_pair(question, language) or (tuple(items) if len(items) == 2 else None)  # type: ignore[assignment]
    return TurnStructure(items, pair, subject_of(question, language))
