"""Question → retrieved passages → the gates (prompts/checks/) → grounded prompt → streamed answer (asked once
more after a refusal) → the checks (prompts/checks/) → checked, cited Answer.

The pipeline runs the ordered gates and checks it is given (composed by app/wiring.py from ``[answer] gates`` and
``[answer] checks``) and knows none of them by name."""

from __future__ import annotations

import time
from collections.abc import Generator as EventGenerator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from app.answer.standalone_question import STANDALONE_FORMS, StandaloneQuestion, standalone_question
from app.generation.base import Generator
from app.generation.settings import GenerationSettings
from ingest.settings import LimitSettings
from prompts.acceptance import decide
from prompts.answer_repair import repair_messages
from prompts.checks.base import AnswerCheck, Draft, PassageGate, Question
from prompts.checks.run import run_checks, run_gates
from prompts.citations import build_citations, remove_invalid_citations
from prompts.context_packing import pack_passages, pack_sentences, prompt_budget
from prompts.conversation import Turn
from prompts.history_window import fit_history, with_history
from prompts.language import detect_language, passages_language
from prompts.records import Answer, SentenceCheck
from prompts.settings import AnswerSettings, DialogueSettings
from prompts.standalone_prompt import build_rewrite_messages
from prompts.templates import PackedPassage, build_messages
from retrieval.multi_query import fuse_results
from retrieval.question_check import QuestionError, validate_question
from retrieval.results import RetrievalResult, ScoredChunk

__all__ = ["AnswerPipeline", "AskOptions", "QuestionError"]


class Retriever(Protocol):
    def retrieve(self, query: str, top_k: int | None = None, rerank: bool | None = None) -> RetrievalResult: ...


class PipelineSettings(Protocol):
    """The sections of the settings the pipeline reads (app.config.Settings has them)."""

    @property
    def answer(self) -> AnswerSettings: ...

    @property
    def dialogue(self) -> DialogueSettings: ...

    @property
    def generation(self) -> GenerationSettings: ...

    @property
    def limits(self) -> LimitSettings: ...


@dataclass
class AskOptions:
    """Per-question choices (the chat page's sidebar, CLI flags, API fields); None = the configured setting."""

    top_k: int | None = None
    rerank: bool | None = None
    min_evidence_score: float | None = None
    generation: GenerationSettings | None = None
    # The conversation so far, oldest first (follow-up questions are answered in its context).
    history: list[Turn] = field(default_factory=list)


@dataclass
class PassagesEvent:
    """Retrieval finished: the passages considered, and its timings."""

    passages: list[ScoredChunk]
    timings: dict[str, float]
    # What was searched for: the message, or a follow-up's standalone form.
    standalone_question: str = ""


@dataclass
class TokenEvent:
    """A piece of answer text as the model produced it."""

    text: str


@dataclass
class DoneEvent:
    """The final, checked answer."""

    answer: Answer


@dataclass
class RetryEvent:
    """The TokenEvents streamed so far were a draft to discard: the model refused and is asked once more, or
    (``widening``) the first pass's answer failed the checks and the question is read over more passages."""

    reason: str
    widening: bool = False


AnswerEvent = PassagesEvent | TokenEvent | RetryEvent | DoneEvent


@dataclass(frozen=True)
class Judged:
    """A draft as the checks left it, and whether it passes (as ``[answer] decision`` combines their verdicts)."""

    passed: bool
    text: str
    reason: str
    signals: dict[str, float]
    sentence_checks: list[SentenceCheck]
    # The fixable defects the checks named (what a repair asks the model to fix).
    defects: list[str]


def _refuse(answer: Answer) -> Iterator[AnswerEvent]:
    """The events of a refusal decided before generation: the refusal sentence as the only token, then done."""
    yield TokenEvent(answer.text)
    yield DoneEvent(answer)


def _passage_language(packed: list[PackedPassage], answer: AnswerSettings) -> str:
    return passages_language(packed, answer.zh_min_cjk_share)


def _may_be_refusal(text: str, refusals: tuple[str, ...]) -> bool:
    """Nothing yet, or the start of a refusal sentence (or one in full)."""
    return any(r.startswith(text) or text.startswith(r) for r in refusals)


def is_refusal(text: str, refusals: tuple[str, ...]) -> bool:
    """The model refused when its answer, citations aside, holds one of the refusal sentences anywhere: at the
    start, or at the end after a figure it then disowns ("…5.1%。根据现有文档无法回答该问题。")."""
    bare = " ".join(remove_invalid_citations(text, set()).split()).lower()
    return any(" ".join(r.rstrip("。.").split()).lower() in bare for r in refusals)


class AnswerPipeline:
    def __init__(self, retriever: Retriever, generator: Generator, settings: PipelineSettings,
                 gates: Sequence[PassageGate], checks: Sequence[AnswerCheck]) -> None:
        """``gates`` judge the packed passages before the model is called, ``checks`` the model's draft; both run in
        order and the first that refuses decides (app.wiring.assemble_pipeline builds them from the settings)."""
        self.retriever = retriever
        self.generator = generator
        self.settings = settings
        self.gates = list(gates)
        self.checks = list(checks)

    def _refusal(self, language: str) -> str:
        a = self.settings.answer
        return a.refusal_zh if language == "zh" else a.refusal_en

    def _pack(self, question: str, passages: list[ScoredChunk], language: str,
              generation: GenerationSettings) -> list[PackedPassage]:
        overhead = self.generator.count_prompt_tokens(
            build_messages(question, [], language, self._refusal(language)))
        a = self.settings.answer
        budget = prompt_budget(a.sentence_budget_tokens if a.packing == "sentences" else a.context_budget_tokens,
                               self.generator.n_ctx, generation.max_new_tokens, overhead)
        if a.packing == "sentences":
            return pack_sentences(passages, question, budget, self.generator.count_tokens, a.focus_sentences,
                                  a.neighbour_sentences)
        return pack_passages(passages, budget, self.generator.count_tokens)

    def warm_up(self) -> None:
        """Evaluate the prompt text every question shares (system prompt, the opening of the user message) once,
        now, for both languages, so the first question is no slower than later ones
        (generators without a prompt cache have nothing to warm)."""
        embedder = getattr(self.retriever, "embedder", None)
        if embedder is not None:  # the first inference of a compiled encoder is slower than later ones
            embedder.encode_queries(["warm up"])
        warm = getattr(self.generator, "warm_up", None)
        if warm is None:
            return
        a = self.settings.answer
        # The prompts on the way to an answer (a retry follows an answer that was slow anyway): a follow-up's
        # rewrite, the answer, the verification of its evidence; Chinese last, as the likelier next question.
        for language, refusal in (("en", a.refusal_en), ("zh", a.refusal_zh)):
            if self.settings.dialogue.follow_up == "rewrite":
                warm([build_rewrite_messages([Turn(q, q)], q, language, self.settings.dialogue.rewrite_answer_chars)
                      for q in ("1", "2")])
            for check in self.checks:  # a check that asks the LLM a prompt of its own (the verification)
                prompts = getattr(check, "warm_prompts", lambda _language: [])(language)
                if prompts:
                    warm(prompts)
            warm([build_messages(q, [], language, refusal) for q in ("1", "2")])

    def stream(self, question: str, options: AskOptions | None = None) -> Iterator[AnswerEvent]:
        """Yield a PassagesEvent, then TokenEvents as the answer is generated, then one DoneEvent."""
        question = validate_question(question, self.settings.limits)
        options = options or AskOptions()
        generation = options.generation or self.settings.generation
        answer_settings = self.settings.answer
        language = detect_language(question, answer_settings.zh_min_cjk_share)
        refusal = self._refusal(language)
        timings: dict[str, float] = {}
        # A follow-up is retrieved, gated and answered as its standalone form; the history never reaches retrieval.
        standalone = self._standalone(question, options.history, generation)
        if standalone.seconds:
            timings["rewrite"] = standalone.seconds
        searched = standalone.text

        start = time.perf_counter()
        result = self._retrieve(question, standalone, options)
        timings["retrieve"] = time.perf_counter() - start
        passages = list(result.passages)
        yield PassagesEvent(passages, {**result.timings, "retrieve": timings["retrieve"]}, searched)
        # Every refusal below is this answer with its reason (the passages stay, so a user sees what was close).
        refused = Answer(question=question, text=refusal, refused=True, passages=passages, language=language,
                         timings=timings, standalone_question=searched, follow_up=standalone.method)

        judged = Question(searched, language, {} if options.min_evidence_score is None
                          else {"min_evidence_score": options.min_evidence_score})

        stages = self._stages(searched, passages, language, generation)
        answering = time.perf_counter()
        for stage, packed in enumerate(stages):
            last = stage == len(stages) - 1
            gates = run_gates(self.gates, judged, packed, passages)
            timings.update({f"gate_{name}": seconds for name, seconds in gates.seconds.items()})
            refused.signals.update(gates.signals)
            if gates.refusal is not None:
                if not last:  # what the gate missed may be in a passage the first pass left out
                    continue
                yield from _refuse(replace(refused, refusal_reason=gates.refusal.reason))
                return
            start = time.perf_counter()
            answer, shown = yield from self._attempt(standalone, packed, language, refused, options.history,
                                                     generation, timings, answering, first_pass=not last)
            if last or not answer.refused:
                yield DoneEvent(answer)
                return
            timings["first_pass"] = time.perf_counter() - start
            if shown:  # the first pass's answer was streamed and failed the checks: the wider answer replaces it
                yield RetryEvent("the best passages did not answer the question; reading more of them", widening=True)

    def _stages(self, question: str, passages: list[ScoredChunk], language: str,
                generation: GenerationSettings) -> list[list[PackedPassage]]:
        """The packed passages of each pass: the first pass's (best passages only) when it holds fewer than the
        whole budget's, then the whole budget's."""
        full = self._pack(question, passages, language, generation)
        a = self.settings.answer
        if a.first_pass_budget_tokens <= 0 or a.packing != "chunks" or len(full) <= 1:
            return [full]
        first = pack_passages(passages, min(a.first_pass_budget_tokens, a.context_budget_tokens),
                              self.generator.count_tokens)
        return [first, full] if first and len(first) < len(full) else [full]

    def _attempt(self, standalone: StandaloneQuestion, packed: list[PackedPassage], language: str, refused: Answer,
                 history: list[Turn], generation: GenerationSettings, timings: dict[str, float], answering: float,
                 first_pass: bool) -> EventGenerator[AnswerEvent, None, tuple[Answer, bool]]:
        """Answer from ``packed`` (asked once more without the refusal option after a refusal, except on a first
        pass, which widens instead) and check it; returns the Answer and whether any token was streamed. A first
        pass streams nothing while its text may still be a refusal, and stops at one. timings["first_token"]:
        seconds from ``answering`` (the first prompt's start) to this attempt's first streamed token."""
        answer_settings = self.settings.answer
        refusals = (answer_settings.refusal_zh, answer_settings.refusal_en)
        asked, previous = standalone.prompt_question, standalone.previous_question
        messages = self._with_history(build_messages(asked, packed, language, self._refusal(language),
                                                     previous_question=previous,
                                                     state_shape=answer_settings.state_shape), history, generation)
        start = time.perf_counter()
        raw, first_token = yield from self._generate(messages, generation, refusals if first_pass else ())
        shown = bool(first_token)
        timings["first_token"] = start - answering + first_token
        decode_start = first_token
        retried, unchecked = False, ""
        if not first_pass and answer_settings.retry_refusals and packed and is_refusal(raw, refusals):
            # The small model refuses some questions its passages answer: ask once more without the refusal option,
            # in the passages' language so the grounding checks can judge the second answer word by word.
            yield RetryEvent("the model found no answer; asking again without the refusal option")
            passage_language = _passage_language(packed, answer_settings)
            retry_start = time.perf_counter() - start
            messages = self._with_history(
                build_messages(asked, packed, passage_language, self._refusal(language), allow_refusal=False,
                               previous_question=previous, state_shape=answer_settings.state_shape),
                history, generation)
            raw, retry_first = yield from self._generate(messages, generation)
            decode_start, retried, shown = retry_start + retry_first, True, True
            # Across languages (English question, Chinese passages) only an answer in the passages' language can
            # be checked word by word; another one is dropped.
            if (raw and passage_language != language
                    and detect_language(raw, answer_settings.zh_min_cjk_share) != passage_language):
                unchecked, raw = raw, ""
        timings["generate"] = time.perf_counter() - start
        generated_tokens = self.generator.count_tokens(raw) if raw else 0
        if generated_tokens > 1 and timings["generate"] > decode_start:
            timings["tokens_per_s"] = (generated_tokens - 1) / (timings["generate"] - decode_start)
        timings["generated_tokens"] = float(generated_tokens)
        return self._finish(raw, packed, refused, retried, unchecked, first_pass, messages, generation), shown

    def _standalone(self, question: str, history: list[Turn], generation: GenerationSettings) -> StandaloneQuestion:
        limits = self.settings.limits
        return standalone_question(question, history, self.generator, generation, self.settings.dialogue,
                                   self.settings.answer, limits.max_question_chars)

    def _retrieve(self, question: str, standalone: StandaloneQuestion, options: AskOptions) -> RetrievalResult:
        """Passages for the standalone question; a rewrite or a resolved question is fused with the message's own
        retrieval (its scores come first: the evidence gate judges the standalone question)."""
        retrieve = self.retriever.retrieve
        if standalone.method not in STANDALONE_FORMS:
            return retrieve(standalone.text, top_k=options.top_k, rerank=options.rerank)
        dialogue = self.settings.dialogue
        results = [retrieve(standalone.text, top_k=options.top_k, rerank=options.rerank),
                   retrieve(question, top_k=options.top_k, rerank=options.rerank)]
        top_k = max(len(r.passages) for r in results)
        return fuse_results(results, [1.0, dialogue.original_weight], dialogue.fusion_rrf_k, top_k)

    def _with_history(self, messages: list[dict], history: list[Turn], generation: GenerationSettings) -> list[dict]:
        """The earlier turns that fit beside the packed passages (already in ``messages``, so they always fit)
        and within ``dialogue.history_budget_tokens``, oldest dropped first."""
        if not history:
            return messages
        room = self.generator.n_ctx - generation.max_new_tokens - self.generator.count_prompt_tokens(messages)
        budget = min(self.settings.dialogue.history_budget_tokens, room)
        return with_history(messages, fit_history(history, budget, self.generator.count_tokens))

    def _generate(self, messages: list[dict], generation: GenerationSettings, hold: tuple[str, ...] = ()
                  ) -> EventGenerator[TokenEvent, None, tuple[str, float]]:
        """Stream one generation as TokenEvents; returns its stripped text and seconds to its first streamed token
        (0.0 when none was). With ``hold`` (refusal sentences), text that may still become one of them is held back,
        and the generation stops once it is one."""
        pieces: list[str] = []
        streamed = 0
        start = time.perf_counter()
        first_token = 0.0
        # A refusal is written within as many pieces as it has characters: holding longer would only delay
        # everything (and a client's cancellation, seen between events) behind empty pieces.
        hold_pieces = max((len(r) for r in hold), default=0)
        for piece in self.generator.stream(messages, generation):
            pieces.append(piece)
            text = "".join(pieces).strip()
            if not streamed and len(pieces) <= hold_pieces and _may_be_refusal(text, hold):
                if any(text.startswith(r) for r in hold):
                    break
                continue
            if not streamed:
                first_token = time.perf_counter() - start
            for held in pieces[streamed:]:
                yield TokenEvent(held)
            streamed = len(pieces)
        return "".join(pieces).strip(), first_token

    def _finish(self, raw: str, packed: list[PackedPassage], refused: Answer, retried: bool = False,
                unchecked: str = "", first_pass: bool = False, messages: list[dict] | None = None,
                generation: GenerationSettings | None = None) -> Answer:
        """The checked Answer for the model's text ``raw``; ``refused`` is the refusal to give, with a reason, if
        the checks fail (``unchecked``: a dropped second answer, see stream; ``first_pass``: an answer from the
        first pass, held to the stricter verification). ``messages``: the prompt ``raw`` answered, for a repair."""
        a = self.settings.answer
        if not raw or is_refusal(raw, (a.refusal_zh, a.refusal_en)):
            if unchecked:
                reason = ("the model found no answer; its second answer was not in the passages' language, so it "
                          f"could not be checked against them: {unchecked}")
            elif raw or retried:
                reason = "the model found no answer in the passages" + (" (asked twice)" if retried else "")
            else:
                reason = "empty answer"
            return replace(refused, refusal_reason=reason)
        # A follow-up is judged as its standalone form.
        question = Question(refused.standalone_question or refused.question, refused.language)
        draft = Draft(raw, retried=retried, first_pass=first_pass)
        judged = self._judge(draft, question, packed, refused)
        repair = a.repair_defects == "always" or (a.repair_defects == "refused" and not judged.passed)
        if judged.defects and repair and messages is not None and not first_pass:
            judged = self._repair(judged, draft, question, packed, refused, messages,
                                  generation or self.settings.generation)
        refused.signals.update(judged.signals)
        if not judged.passed:
            return replace(refused, checks=judged.sentence_checks, refusal_reason=judged.reason,
                           withdrawn=judged.text)
        return replace(refused, text=judged.text, refused=False, citations=build_citations(judged.text, packed),
                       checks=judged.sentence_checks)

    def _judge(self, draft: Draft, question: Question, packed: list[PackedPassage], refused: Answer) -> Judged:
        """Run the checks on ``draft`` and decide as ``[answer] decision`` says (the first refusal, or the
        acceptance score over every check's signals)."""
        a = self.settings.answer
        chain = a.decision == "chain"
        run = run_checks(self.checks, draft, question, packed, until_refused=chain)
        refused.timings.update({f"check_{name}": seconds for name, seconds in run.seconds.items()})
        final = run.draft or draft
        defects = [v.defect for _, v in run.verdicts if v.defect]
        if chain:
            refusal = run.refusal
            return Judged(refusal is None, final.text, refusal.reason if refusal else "", run.signals,
                          run.sentence_checks, defects)
        start = time.perf_counter()
        decided = decide(run, draft, a.acceptance, _passage_language(packed, a) != question.language)
        refused.timings["acceptance"] = time.perf_counter() - start
        signals = {**run.signals, **{f"acceptance.{k}": v for k, v in decided.signals.items()}}
        return Judged(decided.accepted, final.text, decided.reason, signals, run.sentence_checks, defects)

    def _repair(self, judged: Judged, draft: Draft, question: Question, packed: list[PackedPassage], refused: Answer,
                messages: list[dict], generation: GenerationSettings) -> Judged:
        """Ask the model once more with the defects the checks named; the repaired draft is judged the same way and
        replaces the first one when it passes (the first one stands otherwise, kept or refused)."""
        a = self.settings.answer
        start = time.perf_counter()
        repaired = "".join(self.generator.stream(
            repair_messages(messages, draft.text, judged.defects, question.text, question.language), generation)).strip()
        second = None
        if repaired and not is_refusal(repaired, (a.refusal_zh, a.refusal_en)):
            second = self._judge(replace(draft, text=repaired), question, packed, refused)
        refused.timings["repair"] = time.perf_counter() - start
        kept = second is not None and second.passed
        chosen = second if kept else judged
        return replace(chosen, signals={**chosen.signals, "repair.tried": 1.0, "repair.kept": float(kept)})

    def answer(self, question: str, options: AskOptions | None = None) -> Answer:
        for event in self.stream(question, options):
            if isinstance(event, DoneEvent):
                return event.answer
        raise RuntimeError("the answer stream ended without an answer")
