"""The near misses of "another edition/measure" and "another role": evidence naming only another one refuses,
evidence naming none does not (prompts/quantities.pinning_figures, prompts/asked_role.py)."""

from __future__ import annotations

import pytest

from prompts.acceptance import against
from prompts.asked_role import asked_roles, other_roles
from prompts.evidence_match import match_constraints
from prompts.question_constraints import question_constraints

CHECKS = frozenset({"figure", "role"})


def _missing(question: str, evidence: str, language: str = "zh") -> list[str]:
    return match_constraints(question_constraints(question, language), evidence, CHECKS, 0.0, 4).missing


@pytest.mark.parametrize("question, evidence", [
    ("全国游泳锦标赛男子100米自由泳金牌得主是谁？", "男子200米自由泳决赛中，林子航以1分45秒62夺得金牌。"),
    ("滨海地铁6号线二期全长多少公里？", "滨海地铁6号线一期全长32.6公里，设24座车站。"),
    ("恒远科技第五届董事会秘书是谁？", "恒远科技第四届董事会秘书由王芳担任。"),
    ("严长寿23岁时做了什么？", "严长寿十五岁时进入工厂当学徒。"),
    ("电影《山海远行》的编剧是谁？", "电影《山海远行》由周明远执导，刘星河、陈晓雨、马骏主演。"),
    ("Who directed Jaws?", "Jaws, starring Roy Scheider, opened in 1975."),
])
def test_evidence_naming_only_another_refuses(question: str, evidence: str) -> None:
    language = "en" if question.isascii() else "zh"
    assert _missing(question, evidence, language)


@pytest.mark.parametrize("question, evidence", [
    # the same figure, written in Chinese numerals or with other figures beside it
    ("恒远科技第五届董事会董事长是谁？", "恒远科技第五届董事会选举张立为董事长，任期三年。"),
    ("滨海地铁6号线一期设多少座车站？", "六号线一期工程设24座车站，与1号线换乘。"),
    ("全国游泳锦标赛男子200米自由泳金牌得主是谁？", "男子二百米自由泳决赛中，林子航夺得金牌。"),
    # no figure of that kind, no role at all: not evidence against
    ("第十四届滨江市运动会的志愿者有多少人？", "本届运动会共有1.2万名学生志愿者参与赛会服务。"),
    ("电影《山海远行》的导演是谁？", "周明远为这部电影筹备了三年。"),
    ("电影《山海远行》的导演是谁？", "电影《山海远行》由周明远执导。"),
    # 哪一个 / 第二代 are not editions or measures
    ("哪一個單位負責了上海站的站廳設計方案?", "站廳設計由兩個單位合作，華東建築設計院負責方案。"),
    ("Who won the Nobel Prize in 1905?", "The Nobel Prize in 1905 was awarded to Robert Koch."),
])
def test_the_same_or_no_such_evidence_passes(question: str, evidence: str) -> None:
    language = "en" if question.isascii() else "zh"
    assert _missing(question, evidence, language) == []


def test_roles_are_read_only_from_who_questions() -> None:
    assert asked_roles("《山海远行》的编剧是谁？", "zh") == ["screenwriter"]
    assert asked_roles("《山海远行》的编剧写了几稿剧本？", "zh") == []  # not a "who" question
    assert asked_roles("Who composed the score?", "en") == ["composer"]
    assert other_roles(["director"], "由周明远执导", "zh") == []
    assert other_roles([], "由周明远执导", "zh") == []


def test_the_acceptance_decision_takes_them_as_evidence_against():
    # decision = "acceptance": evidence against refuses whatever the score, these two kinds as much as another year.
    assert against({"constraints.conflict_figure": 1.0, "constraints.conflict_role": 1.0}) == ["figure", "role"]
