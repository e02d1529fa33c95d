import pytest

from prompts.number_support import unsupported_numbers


@pytest.mark.parametrize(("answer", "passages", "missing"), [
    ("星河数据库是2019年发布的。[1]", ["星河数据库默认监听 7341 端口。"], ["2019"]),
    ("默认端口是 7341 [1]，版本 2.5 [2]。", ["监听 7341 端口", "当前版本 2.5。"], []),  # [1] [2] are not numbers
    ("共 1,024 个分片", ["1024 个分片"], []),
    ("ＧＰＵ 有 ８０ GB", ["显存 80 GB"], []),  # full-width digits are the same number
    ("训练花了 30 万美元，排放 284 吨", ["约30万美元", "284吨二氧化碳"], []),
    ("版本 2.5", ["版本 2.56"], ["2.5"]),  # whole numbers only: 2.5 is not inside 2.56
    ("有 10 亿参数", ["110M 参数，约 1.1 亿"], ["10"]),
    ("没有数字的回答。", ["任何资料"], []),
])
def test_unsupported_numbers(answer: str, passages: list[str], missing: list[str]) -> None:
    assert unsupported_numbers(answer, passages) == missing


def test_a_figure_the_question_gives_is_not_invented():
    passages = ["东湖钢铁集团全年排放二氧化碳约1850万吨。"]
    answer = "东湖钢铁集团2023年排放二氧化碳约1850万吨。"
    assert unsupported_numbers(answer, passages) == ["2023"]
    assert unsupported_numbers(answer, passages, "东湖钢铁集团2023年排放多少二氧化碳？") == []
