"""Spreadsheet benchmark: a generated workbook of three sheets (2,200 rows) with 30 questions each about one row
or cell. Reports retrieval hit@5 (a top-5 passage holds the row's key and the asked value) through the real
ingest (xlsx loader, record chunker, embedder, BM25) and retriever, and, with ``--answers N``, answer keyword
accuracy of the real answer pipeline (packaged LLM) on the first N questions.

    PYTHONPATH=. .venv/bin/python -m bench.spreadsheet_bench --answers 10

Writes bench/results/spreadsheet.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.lib.paths import RESULTS_DIR

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志鹏飞宇晨欣怡"
_DEPTS = ["研发部", "市场部", "财务部", "人事部", "销售部", "法务部", "采购部", "客服部"]
_CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安", "南京", "重庆"]
_PRODUCTS = ["无线耳机", "机械键盘", "显示器", "移动硬盘", "路由器", "智能手表", "打印机", "投影仪", "扫描仪"]
_STATUS = ["已发货", "待付款", "已完成", "已取消", "退款中"]
_WAREHOUSES = ["华东一号仓", "华南二号仓", "华北三号仓", "西南四号仓"]


@dataclass
class SheetQuestion:
    question: str
    key: str  # the row's identifying value
    answer: str  # the asked cell's value


def build_workbook(path: Path, seed: int = 3) -> list[SheetQuestion]:
    import xlsxwriter
    rng = random.Random(seed)
    book = xlsxwriter.Workbook(str(path))
    questions: list[SheetQuestion] = []
    names: set[str] = set()

    staff = book.add_worksheet("员工名册")
    staff.write_row(0, 0, ["工号", "姓名", "部门", "城市", "入职日期", "月薪"])
    rows = []
    for i in range(800):
        name = rng.choice(_SURNAMES) + "".join(rng.sample(_GIVEN, 2))
        while name in names:
            name = rng.choice(_SURNAMES) + "".join(rng.sample(_GIVEN, 2))
        names.add(name)
        row = [f"E{10000 + i}", name, rng.choice(_DEPTS), rng.choice(_CITIES),
               (dt.date(2015, 1, 1) + dt.timedelta(days=rng.randint(0, 3000))).isoformat(),
               rng.randint(80, 400) * 100]
        staff.write_row(i + 1, 0, row)
        rows.append(row)
    for row in rng.sample(rows, 10):
        kind = rng.randrange(3)
        if kind == 0:
            questions.append(SheetQuestion(f"工号{row[0]}的员工在哪个部门？", row[0], row[2]))
        elif kind == 1:
            questions.append(SheetQuestion(f"{row[1]}的工号是多少？", row[1], row[0]))
        else:
            questions.append(SheetQuestion(f"员工{row[1]}的月薪是多少？", row[1], str(row[5])))

    orders = book.add_worksheet("订单明细")
    orders.write_row(0, 0, ["订单号", "客户", "产品", "数量", "单价", "金额", "状态"])
    rows = []
    for i in range(1000):
        qty, price = rng.randint(1, 50), rng.randint(99, 4999)
        row = [f"SO-{240000 + i * 7}", rng.choice(_SURNAMES) + "".join(rng.sample(_GIVEN, 2)),
               rng.choice(_PRODUCTS), qty, price]
        orders.write_row(i + 1, 0, row)
        orders.write_formula(i + 1, 5, f"=D{i + 2}*E{i + 2}", None, qty * price)  # cached value, as Excel saves
        orders.write(i + 1, 6, rng.choice(_STATUS))
        rows.append(row + [qty * price])
    for row in rng.sample(rows, 10):
        if rng.random() < 0.5:
            questions.append(SheetQuestion(f"订单{row[0]}的金额是多少？", row[0], str(row[5])))
        else:
            questions.append(SheetQuestion(f"订单{row[0]}买的是什么产品？", row[0], row[2]))

    stock = book.add_worksheet("库存")
    stock.write_row(0, 0, ["SKU", "品名", "仓库", "库存量", "供应商"])
    rows = []
    for i in range(400):
        row = [f"SKU{rng.randint(100000, 999999)}-{i}", rng.choice(_PRODUCTS) + f"{rng.choice('ABCDX')}{i}",
               rng.choice(_WAREHOUSES), rng.randint(0, 9000), rng.choice(_CITIES) + "供应商" + str(i % 37)]
        stock.write_row(i + 1, 0, row)
        rows.append(row)
    for row in rng.sample(rows, 10):
        if rng.random() < 0.5:
            questions.append(SheetQuestion(f"{row[0]}存放在哪个仓库？", row[0], row[2]))
        else:
            questions.append(SheetQuestion(f"品名为{row[1]}的商品库存量是多少？", row[1], str(row[3])))
    book.close()
    return questions


def main(argv: list[str] | None = None) -> None:
    from app.answer.answer_pipeline import AskOptions
    from app.config import Settings
    from app.wiring import build_pipeline, build_retriever, run_ingest
    from ingest.pipeline.ingest_pipeline import IngestOptions

    p = argparse.ArgumentParser(prog="python -m bench.spreadsheet_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--answers", type=int, default=0, help="answer the first N questions with the real LLM")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    models = Path(os.environ.get("DOCQA_BENCH_MODELS", str(RESULTS_DIR / "models")))
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "docs").mkdir()
        questions = build_workbook(work / "docs" / "公司数据.xlsx")
        settings = Settings(data_dir=work / "home", model_cache_dir=models)
        settings.embedder.num_threads = args.threads
        settings.generation.n_threads = args.threads
        started = time.perf_counter()
        report = run_ingest(settings, [work / "docs"], IngestOptions())
        result["ingest"] = {"rows": 2200, "chunks": report.chunks_total,
                            "seconds": round(time.perf_counter() - started, 1),
                            "failures": [str(f) for f in report.failures], "load_avg": os.getloadavg()[0]}
        print(json.dumps(result["ingest"], ensure_ascii=False), flush=True)
        retriever = build_retriever(settings)
        hits, misses = 0, []
        for q in questions:
            passages = retriever.retrieve(q.question, top_k=5).passages
            hit = any(q.key in r.chunk.text and q.answer in r.chunk.text for r in passages)
            hits += hit
            if not hit:
                misses.append(q.question)
        result["retrieval"] = {"questions": len(questions), "hit_at_5": round(hits / len(questions), 4),
                               "misses": misses}
        print(json.dumps(result["retrieval"], ensure_ascii=False), flush=True)
        if args.answers:
            pipeline = build_pipeline(settings)
            right, rows = 0, []
            for q in questions[:: max(1, len(questions) // args.answers)][: args.answers]:
                started = time.perf_counter()
                answer = pipeline.answer(q.question, AskOptions())
                ok = not answer.refused and q.answer in answer.text
                right += ok
                rows.append({"question": q.question, "expected": q.answer, "answer": answer.text, "ok": ok,
                             "seconds": round(time.perf_counter() - started, 1)})
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
            result["answers"] = {"questions": len(rows), "keyword_accuracy": round(right / len(rows), 4),
                                 "rows": rows, "load_avg": os.getloadavg()[0]}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "spreadsheet.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
