"""Which role a "who" question asks for (director, screenwriter, author, gold medallist …) and which roles a text
names, so an answer citing a sentence about *another* role is recognised as a near miss.

The shape the issue calls "an actor given as the director": "电影《X》的编剧是谁？" answered with a name from "由A执导，
B、C主演" — the name is in the passage, the question's words are in the passage, only the role differs. The
sentence naming other roles and not the one asked is evidence against the answer; a sentence naming no role at all
is not (it may say "B wrote it" in words this table lacks), so only the first refuses.

Each group lists the words one role is written with, in simplified and traditional Chinese and in English (English
as lower-case word stems matched at word starts). Words that are also ordinary verbs ("写", "found") are left out:
a false "another role" would refuse a right answer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class RoleGroup:
    name: str
    zh: tuple[str, ...]
    en: tuple[str, ...]


ROLE_GROUPS: tuple[RoleGroup, ...] = (
    RoleGroup("director", ("导演", "執導", "执导", "導演", "监制", "監製"), ("director", "directed", "directing")),
    RoleGroup("screenwriter", ("编剧", "編劇", "剧本", "劇本"), ("screenwriter", "screenplay", "script")),
    RoleGroup("cast", ("主演", "出演", "饰演", "飾演", "主角", "领衔", "領銜"), ("starring", "starred", "actor", "actress",
                                                                     "cast")),
    RoleGroup("author", ("作者", "撰写", "撰寫", "所著", "著有", "执笔", "執筆"), ("author", "authored")),
    RoleGroup("composer", ("作曲", "谱曲", "譜曲"), ("composer", "composed")),
    RoleGroup("lyricist", ("作词", "作詞", "填词", "填詞"), ("lyricist", "lyrics")),
    RoleGroup("producer", ("制片", "製片", "出品人"), ("producer", "produced")),
    RoleGroup("host", ("主持",), ("host", "hosted", "presenter")),
    RoleGroup("founder", ("创始人", "創始人", "创办", "創辦", "创立", "創立", "创建", "創建"),
              ("founder", "founded", "co-founded", "established")),
    RoleGroup("inventor", ("发明", "發明"), ("inventor", "invented")),
    RoleGroup("designer", ("设计", "設計"), ("designer", "designed")),
    RoleGroup("winner", ("金牌", "冠军", "冠軍", "夺冠", "奪冠", "得主", "获奖", "獲獎"),
              ("gold medal", "champion", "winner", "won the")),
    RoleGroup("coach", ("教练", "教練", "主帅", "主帥"), ("coach", "manager")),
    RoleGroup("translator", ("翻译", "翻譯", "译者", "譯者"), ("translator", "translated")),
)

_WHO_ZH = re.compile(r"[谁誰]|哪[一]?位|什[么麼]人")
_WHO_EN = re.compile(r"^\s*(?:who|whom|whose)\b|\bwhich\s+(?:person|man|woman)\b", re.IGNORECASE)


def _words(group: RoleGroup, language: str) -> tuple[str, ...]:
    return group.zh if language == "zh" else group.en


def _has(text: str, word: str, language: str) -> bool:
    if language == "zh":
        return word in text
    return re.search(r"\b" + re.escape(word), text) is not None


def roles_in(text: str, language: str) -> list[str]:
    """The role groups ``text`` names, in table order."""
    text = unicodedata.normalize("NFKC", text)
    text = text if language == "zh" else text.lower()
    return [g.name for g in ROLE_GROUPS if any(_has(text, w, language) for w in _words(g, language))]


def asked_roles(question: str, language: str) -> list[str]:
    """The roles a "who" question asks for ("《X》的编剧是谁" → ["screenwriter"]); [] for any other question."""
    text = unicodedata.normalize("NFKC", question)
    who = _WHO_ZH if language == "zh" else _WHO_EN
    return roles_in(text, language) if who.search(text) else []


def other_roles(asked: list[str], evidence: str, language: str) -> list[str]:
    """The roles ``evidence`` names when it names none of ``asked`` (evidence against a "who" answer); else []."""
    if not asked:
        return []
    named = roles_in(evidence, language)
    return [] if set(named) & set(asked) else named
