"""How reliably the packaged local LLM drives a LangChain agent through the ``search_knowledge_base`` tool, on three
tool-call paths side by side:

- lenient: free decoding and the lenient parser ("before");
- grammar: decoding under the tool-call grammar, the greedy first token choosing between a call and an answer;
- decided: the grammar, with the branch chosen by the model's probability mass on beginning a call
  (``LocalChatModel.call_threshold``; ``--call-threshold``).

The knowledge base holds the seed documents and data/sample; the questions (bench/questions/agent_qa.jsonl, written
for this benchmark) are answerable Chinese and English ones over both and unanswerable ones, several of them near
misses. Each question gets a fresh ``create_agent`` run (LocalChatModel over the configured generator, the
knowledge-base tools, AGENT_INSTRUCTIONS, ``tool_choice`` left to the agent: "auto"). Reported per path, over all
questions and per half (even positions = the tuning half, odd = the report half):

- tool_call_rate: the model's first turn called search_knowledge_base (goal >= 0.9);
- valid_call_rate: of the first turns that began a call (text starting with "<tool_call>", or any call the
  parser recovered), the share that parsed into a call of a bound tool with schema-valid arguments (goal 1.0);
- answer_hit_rate (answerable): an expected answer string appears in the agent's final answer (the source lines
  docqa appends to its own answer left out), beside
  direct_hit_rate: the same for the tool's own answer to the question asked directly (goal: within 0.10);
- tool_refusal_rate / final_refusal_rate (unanswerable): the tool answered NOT FOUND / the agent's final answer
  says the documents do not hold it;
- median_seconds: wall time per agent run; tool answers are computed once per question text and reused, and the
  time the tool first took is added back, so the figure is what an uncached run costs;
- small_talk_calls: of four greetings / thanks (first turn only), how many the model answered with a call —
  "auto" must still let it answer where no search is needed.

    nice -n 15 env DOCQA_GENERATION__N_THREADS=1 .venv/bin/python -m bench.agent_tool_calls
    .venv/bin/python -m bench.agent_tool_calls --first-turn-only --paths decided --system-prompt "..."

``--first-turn-only`` asks only for the agent's first model turn (the tools bound, as the agent does): a fast way
to compare system prompts and thresholds (each run records the call probability). Writes
bench/results/agent_tool_calls.json (or agent_first_turn.json) and prints the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.errors import GraphRecursionError

from app.answer.answer_pipeline import AskOptions
from app.config import load_settings
from app.langchain.chat_model_adapter import LocalChatModel
from app.langchain.langchain_tool import AGENT_INSTRUCTIONS, build_knowledge_base_tools, format_answer
from app.langchain.tool_call_format import TOOL_CALL_OPEN
from app.langchain.tool_result_ending import with_sources
from app.wiring import assemble_pipeline, build_generator
from bench.lib.answer_scoring import keyword_hit
from bench.lib.bench_kb import build_kb
from bench.lib.eval_data import Question, load_questions
from bench.lib.llm_cache import CachedGenerator, _key, decoding_of
from bench.lib.paths import BENCH_DIR, QUESTIONS_DIR, RESULTS_DIR, SEEDS_DIR

TOOL = "search_knowledge_base"
QUESTIONS = QUESTIONS_DIR / "agent_qa.jsonl"
SAMPLE_DIR = BENCH_DIR.parent / "data" / "sample"
# lenient: the parser alone ("before"); grammar: decoding under the grammar, the greedy first token choosing
# between a call and an answer; decided: the grammar, the branch chosen by its probability mass (call_threshold).
PATHS = ("lenient", "grammar", "decided")
# Messages an agent should answer without searching: "auto" must still let the model answer them.
SMALL_TALK = ("你好！", "谢谢你的帮助。", "Hello! Who are you?", "Thanks, that's all for today.")
REFUSAL_PHRASES = ("无法回答", "没有", "不包含", "未提及", "未找到", "找不到", "not contain", "do not", "don't",
                   "no information", "not found", "cannot", "does not")


class TimedLLMCache(CachedGenerator):
    """The generator with every answer the agent runs need kept in a SQLite file (``CachedGenerator``'s store),
    including the grammar-constrained turns and the call probabilities, each with the seconds it took when it was
    generated: a rerun after a change replays what was asked before, and ``replayed_seconds`` adds the time those
    replays first cost, so the per-run times stay what an uncached run costs."""

    def __init__(self, generator: Any, path: Path) -> None:
        super().__init__(generator, path)
        self.replayed_seconds = 0.0

    def _timed_pieces(self, key: str, produce: Any) -> Iterator[str]:
        stored = self._get(key)
        if stored is not None:
            self.hits += 1
            value = json.loads(stored)
            self.replayed_seconds += value["seconds"]
            yield from value["pieces"]
            return
        self.misses += 1
        started, pieces = time.perf_counter(), []
        for piece in produce():
            pieces.append(piece)
            yield piece
        self._put(key, json.dumps({"pieces": pieces, "seconds": time.perf_counter() - started}, ensure_ascii=False))

    def _timed_number(self, key: str, produce: Any) -> float:
        stored = self._get(key)
        if stored is not None:
            self.hits += 1
            value = json.loads(stored)
            self.replayed_seconds += value["seconds"]
            return float(value["number"])
        self.misses += 1
        started = time.perf_counter()
        number = produce()
        self._put(key, json.dumps({"number": number, "seconds": time.perf_counter() - started}))
        return number

    def stream(self, messages: list[dict[str, str]], settings: Any) -> Iterator[str]:
        key = _key("stream-timed", self.name, [messages, decoding_of(settings)])
        return self._timed_pieces(key, lambda: self._generator.stream(messages, settings))

    def stream_constrained(self, messages: list[dict[str, str]], settings: Any, grammar: str) -> Iterator[str]:
        key = _key("constrained", self.name, [messages, decoding_of(settings), grammar])
        return self._timed_pieces(key, lambda: self._generator.stream_constrained(messages, settings, grammar))

    def yes_probability(self, messages: list[dict[str, str]], yes: tuple[str, ...], no: tuple[str, ...]) -> float:
        key = _key("yes-timed", self.name, [messages, list(yes), list(no)])
        return self._timed_number(key, lambda: self._generator.yes_probability(messages, yes, no))

    def leading_char_probability(self, messages: list[dict[str, str]], chars: str) -> float:
        key = _key("leading", self.name, [messages, chars])
        return self._timed_number(key, lambda: self._generator.leading_char_probability(messages, chars))


class RecordingGenerator:
    """Passes calls through to the real generator, keeping each raw reply (to judge the first turn)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.n_ctx = inner.name, inner.n_ctx
        self.replies: list[str] = []

    def _record(self, pieces: Iterator[str]) -> Iterator[str]:
        kept: list[str] = []
        try:
            for piece in pieces:
                kept.append(piece)
                yield piece
        finally:
            self.replies.append("".join(kept))

    def stream(self, messages: list[dict[str, str]], settings: Any) -> Iterator[str]:
        return self._record(self.inner.stream(messages, settings))

    def stream_constrained(self, messages: list[dict[str, str]], settings: Any, grammar: str) -> Iterator[str]:
        return self._record(self.inner.stream_constrained(messages, settings, grammar))

    def leading_char_probability(self, messages: list[dict[str, str]], chars: str) -> float:
        return self.inner.leading_char_probability(messages, chars)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return self.inner.count_prompt_tokens(messages)


class AnswerCache:
    """The answer pipeline with its answers kept per question text: the agents of both paths and the direct run
    ask the same questions, and greedy decoding gives the same answer each time. ``reused_seconds`` is the time
    the reused answers first took (``llm``'s replayed generations counted as the time they first took)."""

    def __init__(self, pipeline: Any, llm: TimedLLMCache) -> None:
        self.pipeline = pipeline
        self.retriever = pipeline.retriever
        self.llm = llm
        self._answers: dict[str, tuple[Any, float]] = {}
        self.reused_seconds = 0.0

    def answer(self, question: str, options: AskOptions | None = None) -> Any:
        if question in self._answers:
            answer, seconds = self._answers[question]
            self.reused_seconds += seconds
            return answer
        started, replayed = time.perf_counter(), self.llm.replayed_seconds
        answer = self.pipeline.answer(question, options or AskOptions())
        self._answers[question] = (answer, time.perf_counter() - started + self.llm.replayed_seconds - replayed)
        return answer

    def seconds(self, question: str) -> float:
        return self._answers[question][1]


@dataclass
class Run:
    qid: str
    lang: str
    answerable: bool
    question: str
    path: str
    tool_called: bool = False
    call_probability: float | None = None
    call_started: bool = False
    call_valid: bool = False
    completed: bool = False
    answer_hit: bool = False
    tool_refused: bool = False
    final_refused: bool = False
    tool_question: str = ""
    final: str = ""
    # Who wrote the final reply: "model", or "tool_refusal" / "tool_answer" (the adapter passed on the tool's
    # refusal / its answer with its sources).
    answer_path: str = ""
    first_reply: str = ""
    seconds: float = 0.0
    error: str = ""
    steps: list[str] = field(default_factory=list)


def _judge_first_turn(run: Run, message: AIMessage | None, reply: str) -> None:
    run.first_reply = reply
    if message is not None:
        run.call_probability = message.response_metadata.get("call_probability")
    calls = message.tool_calls if message is not None else []
    run.tool_called = any(c["name"] == TOOL for c in calls)
    run.tool_question = next((str(c["args"].get("question", "")) for c in calls if c["name"] == TOOL), "")
    # A call was begun when the reply opens with the call tag or the parser found one in it (drifted forms).
    run.call_started = reply.lstrip().startswith(TOOL_CALL_OPEN) or bool(calls) or bool(
        message is not None and message.invalid_tool_calls)
    run.call_valid = run.call_started and bool(calls) and all(isinstance(c["args"], dict) for c in calls)


def _answer_part(message: AIMessage) -> str:
    """The reply without the source lines the adapter appends to the tool's answer (a file name or heading there
    is not the answer): scored as the tool asked directly is, on its answer text."""
    sources = message.response_metadata.get("sources") or []
    return str(message.content).removesuffix(with_sources("", sources))


def _refuses(text: str) -> bool:
    low = text.lower()
    return any(p in low for p in REFUSAL_PHRASES)


def run_agent(agent: Any, recorder: RecordingGenerator, cache: AnswerCache, q: Question, path: str,
              max_steps: int) -> Run:
    run = Run(q.qid, q.lang, q.answerable, q.question, path)
    recorder.replies.clear()
    cache.reused_seconds = 0.0
    started, replayed = time.perf_counter(), cache.llm.replayed_seconds
    messages: list[Any] = []
    try:
        # Streamed state by state, so a run stopped by the step limit is still judged on what it did.
        for state in agent.stream({"messages": [HumanMessage(q.question)]}, config={"recursion_limit": max_steps},
                                  stream_mode="values"):
            messages = state["messages"]
        run.completed = isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls
    except GraphRecursionError as exc:
        run.error = f"step limit: {exc}"[:200]
    # Reused tool answers and replayed generations count as the time they first took: an uncached run's cost.
    # The tool answer is counted in the agent's own share of reused_seconds even when the direct run paid it.
    run.seconds = time.perf_counter() - started + cache.reused_seconds + cache.llm.replayed_seconds - replayed
    _judge_first_turn(run, next((m for m in messages if isinstance(m, AIMessage)), None),
                      recorder.replies[0] if recorder.replies else "")
    for m in messages:
        if isinstance(m, AIMessage):
            run.steps.append("call" if m.tool_calls else "answer")
        elif isinstance(m, ToolMessage):
            run.steps.append("tool")
            run.tool_refused = run.tool_refused or str(m.content).startswith("NOT FOUND")
    if run.completed:
        run.final = str(messages[-1].content)
        run.answer_path = messages[-1].response_metadata.get("answer_path", "")
        run.answer_hit = q.answerable and keyword_hit(_answer_part(messages[-1]), q.answers)
        run.final_refused = _refuses(run.final)
    return run


def run_first_turn(model: LocalChatModel, tools: Any, system_prompt: str, q: Question, path: str) -> Run:
    """Only the agent's first model call: system prompt + question with the tools bound."""
    run = Run(q.qid, q.lang, q.answerable, q.question, path)
    model.generator.replies.clear()
    started = time.perf_counter()
    message = model.bind_tools(tools.tools).invoke([SystemMessage(system_prompt), HumanMessage(q.question)])
    run.seconds = time.perf_counter() - started
    _judge_first_turn(run, message, model.generator.replies[-1])
    run.steps = ["call" if message.tool_calls else "answer"]
    return run


def probe(model: LocalChatModel, tools: Any, system_prompt: str, q: Question) -> dict[str, Any]:
    """The first turn's branch, without decoding a reply: the probability the model puts on beginning a call
    (what ``call_threshold`` compares), and the branch the greedy first token takes under the "auto" grammar
    (one token decoded: under the grammar a reply that starts with "<" is a call, and every call is valid)."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from app.langchain.tool_call_grammar import CALL_START_CHARS, ToolChoice, tool_call_grammar

    schemas = [convert_to_openai_tool(t) for t in tools.tools]
    plain = model._plain_messages([SystemMessage(system_prompt), HumanMessage(q.question)], schemas)
    generator = model.generator
    started = time.perf_counter()
    p_call = generator.leading_char_probability(plain, CALL_START_CHARS)
    first = "".join(generator.stream_constrained(plain, model.generation.replace(max_new_tokens=1),
                                                 tool_call_grammar(schemas, ToolChoice("auto"))))
    return {"qid": q.qid, "answerable": q.answerable, "call_probability": round(p_call, 4),
            "greedy_calls": first.startswith("<"), "first_token": first, "seconds": round(time.perf_counter() - started, 1)}


def threshold_table(probes: list[dict[str, Any]], talk: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """First-turn call rates per half if the branch were decided at each threshold (decided path), beside the
    greedy grammar's, and the small-talk messages each would answer with a call."""
    rows = []
    for threshold in (None, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01):
        def calls(p: dict[str, Any]) -> bool:
            return p["greedy_calls"] if threshold is None else p["call_probability"] >= threshold
        rows.append({"threshold": threshold if threshold is not None else "greedy",
                     "tune_half": _rate([calls(p) for p in half(probes, "tune")]),
                     "report_half": _rate([calls(p) for p in half(probes, "report")]),
                     "small_talk_calls": sum(calls(p) for p in talk)})
    return rows


def run_direct(cache: AnswerCache, q: Question, max_chars: int) -> dict[str, Any]:
    """The tool's own answer to the question, asked directly (what the agent is compared with)."""
    answer = cache.answer(q.question)
    text = format_answer(answer, max_chars)
    return {"qid": q.qid, "answerable": q.answerable, "refused": answer.refused,
            "hit": q.answerable and not answer.refused and keyword_hit(answer.text, q.answers),
            "seconds": round(cache.seconds(q.question), 2), "text": text[:400]}


def _rate(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def half(runs: list, name: str) -> list:
    """The tuning half (even positions in the question file) or the report half (odd positions)."""
    return runs[0::2] if name == "tune" else runs[1::2]


def summarise(runs: list[Run]) -> dict[str, Any]:
    answerable = [r for r in runs if r.answerable]
    unanswerable = [r for r in runs if not r.answerable]
    return {
        "questions": len(runs),
        "tool_call_rate": _rate([r.tool_called for r in runs]),
        "valid_call_rate": _rate([r.call_valid for r in runs if r.call_started]),
        "completed_rate": _rate([r.completed for r in runs]),
        "answer_hit_rate": _rate([r.answer_hit for r in answerable]),
        "tool_refusal_rate": _rate([r.tool_refused for r in unanswerable]),
        "final_refusal_rate": _rate([r.final_refused for r in unanswerable]),
        "ended_by_tool_refusal": sum(r.answer_path == "tool_refusal" for r in runs),
        "ended_by_tool_answer": sum(r.answer_path == "tool_answer" for r in runs),
        "median_seconds": round(statistics.median(r.seconds for r in runs), 1) if runs else None,
    }


def bench_corpus(work_dir: Path) -> Path:
    """One folder with the seed documents and data/sample (copied: the seeds folder is read-only elsewhere)."""
    folder = work_dir / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    for source in [*sorted(SEEDS_DIR.iterdir()), *sorted(SAMPLE_DIR.iterdir())]:
        target = folder / source.name
        if source.is_file() and not target.exists():
            shutil.copyfile(source, target)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_tool_calls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=0, help="only the first N questions (0 = all)")
    parser.add_argument("--half", choices=("tune", "report"), help="only one half of the questions")
    parser.add_argument("--qids", nargs="+", help="only these questions (e.g. a mixed subset of the report half)")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--max-new-tokens", type=int, default=160, help="per model turn")
    parser.add_argument("--max-steps", type=int, default=6, help="LangGraph recursion limit per question")
    parser.add_argument("--system-prompt", default=AGENT_INSTRUCTIONS, help="default: AGENT_INSTRUCTIONS")
    parser.add_argument("--lenient-prompt", help="the lenient path's system prompt (e.g. the one shipped before; "
                                                 "default: --system-prompt)")
    parser.add_argument("--first-turn-only", action="store_true", help="measure only the first model turn")
    parser.add_argument("--out-suffix", default="", help="appended to the result file's name")
    parser.add_argument("--probe", action="store_true",
                        help="only the first turn's branch per question: call probability, greedy grammar branch")
    parser.add_argument("--no-refusal-ending", action="store_true",
                        help="let the model write the reply after a tool refusal (LocalChatModel.end_on_tool_refusal "
                             "off: the behaviour before it)")
    parser.add_argument("--no-answer-ending", action="store_true",
                        help="let the model write the reply after a tool answer (LocalChatModel.end_on_tool_answer "
                             "off: the behaviour before it)")
    parser.add_argument("--call-threshold", type=float, default=LocalChatModel.model_fields["call_threshold"].default,
                        help="the decided path's call_threshold (default: LocalChatModel's)")
    args = parser.parse_args(argv)

    settings = load_settings()
    work_dir = RESULTS_DIR / "kb-agent"
    retriever, embedder, _ = build_kb(settings, bench_corpus(work_dir), "agent")
    generator = TimedLLMCache(build_generator(settings), RESULTS_DIR / "agent_llm.sqlite3")
    cache = AnswerCache(assemble_pipeline(retriever, generator, embedder, settings), generator)
    tools = build_knowledge_base_tools(settings=settings, pipeline=cache)
    recorder = RecordingGenerator(generator)
    questions = load_questions(QUESTIONS)
    questions = (half(questions, args.half) if args.half else questions)[:args.questions or None]
    if args.qids:
        questions = [q for q in questions if q.qid in set(args.qids)]
    generation = settings.generation.replace(max_new_tokens=args.max_new_tokens)

    if args.probe:
        model = LocalChatModel(generator=recorder, generation=generation)
        probes = [probe(model, tools, args.system_prompt, q) for q in questions]
        talk = [probe(model, tools, args.system_prompt, Question(f"talk-{i}", text, [], []))
                for i, text in enumerate(SMALL_TALK, 1)]
        for p in probes + talk:
            print(f"probe {p['qid']:<10} p_call={p['call_probability']:.4f} greedy={'call' if p['greedy_calls'] else 'answer'}"
                  f" {p['first_token']!r} {p['seconds']}s", file=sys.stderr)
        table = threshold_table(probes, talk)
        out = RESULTS_DIR / f"agent_probe{args.out_suffix}.json"
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"system_prompt": args.system_prompt, "thresholds": table, "probes": probes,
                                   "small_talk": talk}, ensure_ascii=False, indent=2), encoding="utf-8")
        print(json.dumps(table, indent=1))
        print(f"written {out}")
        return 0
    direct: list[dict[str, Any]] = []
    if not args.first_turn_only:
        for q in questions:
            direct.append(run_direct(cache, q, settings.answer.tool_passage_chars))
            print(f"direct {q.qid:<10} hit={'Y' if direct[-1]['hit'] else '-'} "
                  f"refused={'Y' if direct[-1]['refused'] else '-'} {direct[-1]['seconds']:5.1f}s", file=sys.stderr)
    results: dict[str, Any] = {}
    small_talk = [Question(f"talk-{i}", text, [], [], answerable=False, lang="zh" if ord(text[0]) > 127 else "en")
                  for i, text in enumerate(SMALL_TALK, 1)]
    for path in args.paths:
        model = LocalChatModel(generator=recorder, generation=generation, constrained=path != "lenient",
                               call_threshold=args.call_threshold if path == "decided" else None,
                               end_on_tool_refusal=not args.no_refusal_ending,
                               end_on_tool_answer=not args.no_answer_ending)
        prompt = args.lenient_prompt if path == "lenient" and args.lenient_prompt else args.system_prompt
        agent = create_agent(model, tools.tools, system_prompt=prompt)
        talk = [run_first_turn(model, tools, prompt, q, path) for q in small_talk]
        runs = []
        for q in questions:
            run = (run_first_turn(model, tools, prompt, q, path) if args.first_turn_only
                   else run_agent(agent, recorder, cache, q, path, args.max_steps))
            runs.append(run)
            print(f"{path:<8} {run.qid:<10} tool={'Y' if run.tool_called else 'n'} "
                  f"valid={'Y' if run.call_valid else ('n' if run.call_started else '-')} "
                  f"hit={'Y' if run.answer_hit else '-'} refused={'Y' if run.final_refused else '-'} "
                  f"by={run.answer_path or '-'} "
                  f"{run.seconds:5.1f}s  {' '.join(run.steps)}", file=sys.stderr)
        halves = {} if args.half else {"tune_half": summarise(half(runs, "tune")),
                                       "report_half": summarise(half(runs, "report"))}
        results[path] = {"summary": {**summarise(runs), **halves,
                                     "small_talk_calls": sum(r.tool_called for r in talk)},
                         "runs": [dataclasses.asdict(r) for r in runs],
                         "small_talk": [dataclasses.asdict(r) for r in talk]}
    summary: dict[str, Any] = {path: results[path]["summary"] for path in args.paths}
    if direct:
        answerable = [d for d in direct if d["answerable"]]
        summary["direct_tool"] = {
            "direct_hit_rate": _rate([d["hit"] for d in answerable]),
            "direct_refusal_rate": _rate([d["refused"] for d in direct if not d["answerable"]]),
            "median_seconds": round(statistics.median(d["seconds"] for d in direct), 1)}
    meta = {"model": settings.generation.model, "n_threads": settings.generation.n_threads,
            "call_threshold": args.call_threshold if "decided" in args.paths else None,
            "first_turn_only": args.first_turn_only, "half": args.half or "both", "qids": args.qids, "system_prompt": args.system_prompt,
            "lenient_prompt": args.lenient_prompt or args.system_prompt,
            "end_on_tool_refusal": not args.no_refusal_ending, "end_on_tool_answer": not args.no_answer_ending,
            "max_new_tokens": args.max_new_tokens, "questions_file": str(QUESTIONS.relative_to(BENCH_DIR.parent))}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / (("agent_first_turn" if args.first_turn_only else "agent_tool_calls") + f"{args.out_suffix}.json")
    out.write_text(json.dumps({"meta": meta, "summary": summary, "direct": direct, "paths": results},
                              ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
