"""What a question asks for, from real question shapes (issue #25, the eval sets, the seeds), and how documents
write numbers (prompts/question_shape.py, prompts/quantities.py)."""

import pytest

from prompts.quantities import read_quantities, to_arabic, unit_group
from prompts.question_shape import COUNT, DATE, LIST, QUANTITY, TIME, YEAR, AskedFor, asked_for


@pytest.mark.parametrize("question, expected", [
    # The shapes.
    ("“云梯三号”运载火箭是几几年首飞的？", AskedFor(YEAR)),
    ("运动会的志愿者有多少人？", AskedFor(COUNT, "人", people=True)),
    ("东湖钢铁集团的碳达峰路径分哪几步？", AskedFor(LIST)),
    ("办理居住证要几步？", AskedFor(COUNT)),
    ("东湖钢铁集团2023年排放多少二氧化碳？", AskedFor(QUANTITY)),
    ("这次发射了几颗卫星？", AskedFor(COUNT)),
    ("某省2023年一季度GDP增速是多少？", AskedFor(QUANTITY)),
    # From CMRC 2018 / DRCD.
    ("若游戏中离，则多少分钟内不得进行配对？", AskedFor(QUANTITY, "分钟")),
    ("非洲的猴面包树果实的长度约是多少厘米？", AskedFor(QUANTITY, "厘米")),
    ("夏尔精通哪几门语言？", AskedFor(LIST)),
    ("搭台馬輪從南竿到東引區要花費多少時間？", AskedFor(QUANTITY)),
    ("在可觀測宇宙中2010年估計有幾顆恆星？", AskedFor(COUNT)),
    ("男子100米跑共有多少国家和运动员参赛？", AskedFor(QUANTITY)),
    ("本次锦标赛有多少名运动员参赛？", AskedFor(COUNT)),  # a classifier: any count
    ("这个国家有多少人口？", AskedFor(COUNT, "人", people=True)),
    ("这座城市每年接待多少人次游客？", AskedFor(COUNT, "人", people=True)),
    ("滨海地铁6号线一期是几月几日开通的？", AskedFor(DATE)),
    ("该条约于何时签订？", AskedFor(TIME)),
    ("他是哪一年出生的？", AskedFor(YEAR)),
    ("電影的導演是誰？", AskedFor()),
    ("为什么要做层归一化？", AskedFor()),
    # English.
    ("How many of Warsaw's inhabitants spoke Polish in 1933?", AskedFor(COUNT)),
    ("How many people live in the city?", AskedFor(COUNT, people=True)),
    ("How much did the bridge cost?", AskedFor(QUANTITY)),
    ("In what year did the war end?", AskedFor(YEAR)),
    ("When was the treaty signed?", AskedFor(TIME)),
    ("Who directed the film?", AskedFor()),
])
def test_what_a_question_asks_for(question, expected):
    language = "en" if question.isascii() else "zh"
    assert asked_for(question, language) == expected


def test_numbers_as_documents_write_them():
    assert to_arabic("二〇二三年三月十日") == "2023年3月10日"
    assert to_arabic("发射了两颗卫星") == "发射了2颗卫星"
    (volunteers,) = read_quantities("1.2万名学生志愿者参与服务")
    assert (volunteers.value, volunteers.unit, volunteers.counts_people) == (12000, "名", True)
    assert [(q.value, q.unit) for q in read_quantities("共收录412道题目，其中37道题没有答案")] == [(412, "道"), (37, "道")]
    assert [(q.value, q.unit) for q in read_quantities("增长百分之五点一")] == [(5.1, "%")]
    assert [(q.value, q.unit) for q in read_quantities("约1850万吨，吨钢1.72吨")] == [(18_500_000, "吨"), (1.72, "吨")]
    assert [q.value for q in read_quantities("out of 1,178,914 inhabitants")] == [1178914]
    assert read_quantities("3.5万人次")[0].counts_people


def test_units_that_measure_the_same_thing_answer_each_other():
    assert "千米" in unit_group("公里") and "位" in unit_group("人") and unit_group("颗") == {"颗"}
