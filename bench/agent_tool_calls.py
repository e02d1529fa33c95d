"""How reliably the packaged local LLM drives a LangChain agent through the ``search_knowledge_base`` tool.

For each question a fresh ``langchain.agents.create_agent`` agent (LocalChatModel over the configured generator,
the knowledge-base tools, AGENT_INSTRUCTIONS) runs with a small recursion limit, on the seeds corpus and
bench/questions/seeds_qa.jsonl (answerable Chinese and English questions and unanswerable ones). Reported:

- tool_call_rate: the model's first turn produced a call to search_knowledge_base that the adapter parsed;
- strict_format_rate: that first turn used the template's exact ``<tool_call>{json}</tool_call>`` form (the rest
  are drifted forms the adapter's lenient parser recovered, e.g. ``<tools>`` tags or doubled braces);
- completed_rate: the run ended with a final answer within the step limit;
- answer_hit_rate (answerable): an expected answer string appears in the final answer;
- refusal_rate (unanswerable): the final answer says the documents do not hold the answer.

    .venv/bin/python -m bench.agent_tool_calls --questions 10
    .venv/bin/python -m bench.agent_tool_calls --first-turn-only --system-prompt "..."   # quick prompt trials

``--first-turn-only`` asks only for the model's first turn (with the tools bound, as the agent does) and reports
just the two tool-call rates: a fast way to compare system prompts.

Writes bench/results/agent_tool_calls.json and prints the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.errors import GraphRecursionError

from app.config import load_settings
from app.langchain.chat_model_adapter import LocalChatModel
from app.langchain.langchain_tool import AGENT_INSTRUCTIONS, build_knowledge_base_tools
from app.wiring import assemble_pipeline, build_generator
from bench.lib.answer_scoring import keyword_hit
from bench.lib.bench_kb import build_kb
from bench.lib.eval_data import Question, load_questions
from bench.lib.paths import RESULTS_DIR, SEEDS_DIR, SEEDS_QUESTIONS

TOOL = "search_knowledge_base"
_STRICT_CALL = re.compile(r"^\s*<tool_call>\s*(\{.*\})\s*(?:</tool_call>\s*)?$", re.DOTALL)
REFUSAL_PHRASES = ("无法回答", "没有", "不包含", "未提及", "not contain", "do not", "don't", "no information",
                   "not found", "cannot")


class RecordingGenerator:
    """Passes calls through to the real generator, keeping each raw reply (to judge the tool-call format)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.n_ctx = inner.name, inner.n_ctx
        self.replies: list[str] = []

    def stream(self, messages: list[dict[str, str]], settings: Any) -> Iterator[str]:
        pieces: list[str] = []
        try:
            for piece in self.inner.stream(messages, settings):
                pieces.append(piece)
                yield piece
        finally:
            self.replies.append("".join(pieces))


@dataclass
class Run:
    qid: str
    lang: str
    answerable: bool
    question: str
    tool_called: bool = False
    strict_format: bool = False
    completed: bool = False
    answer_hit: bool = False
    refused: bool = False
    tool_question: str = ""
    final: str = ""
    first_reply: str = ""
    seconds: float = 0.0
    error: str = ""
    steps: list[str] = field(default_factory=list)


def _strict(reply: str) -> bool:
    match = _STRICT_CALL.match(reply)
    if not match:
        return False
    try:
        return json.loads(match.group(1)).get("name") == TOOL
    except (json.JSONDecodeError, AttributeError):
        return False


def pick_questions(questions: list[Question], n: int) -> list[Question]:
    """A fixed mix: about 60% answerable Chinese, 20% answerable English, 20% unanswerable."""
    zh = [q for q in questions if q.answerable and q.lang != "en"]
    en = [q for q in questions if q.answerable and q.lang == "en"]
    no = [q for q in questions if not q.answerable]
    n_en, n_no = max(1, n // 5), max(1, n // 5)
    picked = zh[:n - n_en - n_no] + en[:n_en] + no[:n_no]
    return picked[:n]


def run_one(agent: Any, recorder: RecordingGenerator, q: Question, max_steps: int) -> Run:
    run = Run(q.qid, q.lang, q.answerable, q.question)
    recorder.replies.clear()
    started = time.perf_counter()
    try:
        result = agent.invoke({"messages": [HumanMessage(q.question)]}, config={"recursion_limit": max_steps})
        messages = result["messages"]
        run.completed = isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls
    except GraphRecursionError as exc:
        messages, run.error = [], f"step limit: {exc}"[:200]
    run.seconds = time.perf_counter() - started
    run.first_reply = recorder.replies[0] if recorder.replies else ""
    first_ai = next((m for m in messages if isinstance(m, AIMessage)), None)
    calls = first_ai.tool_calls if first_ai is not None else []
    if not messages and recorder.replies:  # the run hit the limit; judge the first reply on its own
        from app.langchain.tool_call_format import parse_reply

        calls = [{"name": c.name, "args": c.arguments} for c in parse_reply(run.first_reply, {TOOL}).tool_calls]
    run.tool_called = any(c["name"] == TOOL for c in calls)
    run.tool_question = next((str(c["args"].get("question", "")) for c in calls if c["name"] == TOOL), "")
    run.strict_format = run.tool_called and _strict(run.first_reply)
    for m in messages:
        if isinstance(m, AIMessage):
            run.steps.append("call" if m.tool_calls else "answer")
        elif isinstance(m, ToolMessage):
            run.steps.append("tool")
    if run.completed:
        run.final = str(messages[-1].content)
        run.answer_hit = q.answerable and keyword_hit(run.final, q.answers)
        low = run.final.lower()
        run.refused = any(p in low for p in REFUSAL_PHRASES)
    return run


def first_turn(model: Any, tools: Any, system_prompt: str, q: Question) -> Run:
    """Only the agent's first model call: system prompt + question with the tools bound."""
    run = Run(q.qid, q.lang, q.answerable, q.question)
    started = time.perf_counter()
    message = model.bind_tools(tools.tools).invoke([SystemMessage(system_prompt), HumanMessage(q.question)])
    run.seconds = time.perf_counter() - started
    run.first_reply = model.generator.replies[-1]
    run.tool_called = any(c["name"] == TOOL for c in message.tool_calls)
    run.tool_question = next((str(c["args"].get("question", "")) for c in message.tool_calls if c["name"] == TOOL), "")
    run.strict_format = run.tool_called and _strict(run.first_reply)
    run.steps = ["call" if message.tool_calls else "answer"]
    return run


def _rate(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def summarise(runs: list[Run]) -> dict[str, Any]:
    answerable = [r for r in runs if r.answerable]
    unanswerable = [r for r in runs if not r.answerable]
    return {
        "questions": len(runs),
        "tool_call_rate": _rate([r.tool_called for r in runs]),
        "strict_format_rate": _rate([r.strict_format for r in runs]),
        "completed_rate": _rate([r.completed for r in runs]),
        "answer_hit_rate": _rate([r.answer_hit for r in answerable]),
        "refusal_rate": _rate([r.refused for r in unanswerable]),
        "median_seconds": sorted(r.seconds for r in runs)[len(runs) // 2] if runs else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_tool_calls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=160, help="per model turn")
    parser.add_argument("--max-steps", type=int, default=6, help="LangGraph recursion limit per question")
    parser.add_argument("--system-prompt", default=AGENT_INSTRUCTIONS, help="default: AGENT_INSTRUCTIONS")
    parser.add_argument("--first-turn-only", action="store_true", help="measure only the first model turn")
    args = parser.parse_args(argv)

    settings = load_settings()
    retriever, embedder, _ = build_kb(settings, SEEDS_DIR, "answer-seeds")
    generator = build_generator(settings)
    pipeline = assemble_pipeline(retriever, generator, embedder, settings)
    tools = build_knowledge_base_tools(settings=settings, pipeline=pipeline)
    recorder = RecordingGenerator(generator)
    model = LocalChatModel(generator=recorder,
                           generation=dataclasses.replace(settings.generation, max_new_tokens=args.max_new_tokens))
    agent = create_agent(model, tools.tools, system_prompt=args.system_prompt)

    runs = []
    for q in pick_questions(load_questions(SEEDS_QUESTIONS), args.questions):
        if args.first_turn_only:
            run = first_turn(model, tools, args.system_prompt, q)
        else:
            run = run_one(agent, recorder, q, args.max_steps)
        runs.append(run)
        print(f"{run.qid:<10} tool={'Y' if run.tool_called else 'n'} strict={'Y' if run.strict_format else 'n'} "
              f"done={'Y' if run.completed else 'n'} hit={'Y' if run.answer_hit else '-'} "
              f"refused={'Y' if run.refused else '-'} {run.seconds:5.1f}s  {' '.join(run.steps)}", file=sys.stderr)
    summary = summarise(runs)
    summary["model"] = settings.generation.model
    summary["first_turn_only"] = args.first_turn_only
    summary["system_prompt"] = args.system_prompt
    summary["generation"] = dataclasses.asdict(model.generation)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / ("agent_first_turn.json" if args.first_turn_only else "agent_tool_calls.json")
    out.write_text(json.dumps({"summary": summary, "runs": [dataclasses.asdict(r) for r in runs]},
                              ensure_ascii=False, indent=2), encoding="utf-8")
    for key, value in summary.items():
        if key != "generation":
            print(f"{key:>20}: {value}")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
