"""Settings of the answer checks and the prompt: context budget, refusal gates, grounding checks, languages."""

from __future__ import annotations

import importlib.util
import re
from typing import Literal

from pydantic import Field, field_validator

from ingest.settings import SettingsSection


# A check named by a module of prompts/checks/, or "package.module:factory" for one kept elsewhere.
_CHECK_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_CHECK_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _known_checks(entries: tuple[str, ...]) -> tuple[str, ...]:
    """Each entry names a module of prompts/checks/ or has the form "package.module:factory" (imported when the
    pipeline is built); repeats are refused."""
    for entry in entries:
        if _CHECK_PATH.fullmatch(entry):
            continue
        if not _CHECK_NAME.fullmatch(entry) or importlib.util.find_spec(f"prompts.checks.{entry}") is None:
            raise ValueError(f"{entry!r} is no module of prompts/checks/ and not of the form 'package.module:factory'")
    if len(set(entries)) != len(entries):
        raise ValueError("a check is named twice")
    return entries


class AcceptanceModel(SettingsSection):
    """One acceptance decision over an answer's signals (prompts/acceptance.py): score = sigmoid(intercept +
    Σ weight·feature), the answer kept when score ≥ threshold. Features: prompts/acceptance.FEATURES."""

    intercept: float = 0.0
    weights: dict[str, float] = Field(default_factory=dict)
    threshold: float = Field(0.5, ge=0, le=1)
    # Lexical support below this counts as low (a feature, not a veto) ...
    low_lexical_support: float = Field(0.7, ge=0, le=1)
    # ... for answers with at least this many content tokens (a short answer hinges on one or two).
    min_lexical_tokens: int = Field(20, ge=1)
    # Checks whose refusal stands whatever the score: a second answer that invents a figure.
    vetoes: tuple[str, ...] = ("retry_numbers",)


class AnswerSettings(SettingsSection):
    # The gates that may refuse before the LLM is called, in order (prompts/checks/; each reads its own settings
    # below): the best evidence score (min_evidence_score), the question's names (require_question_names).
    gates: tuple[str, ...] = ("evidence_score", "question_names")
    # The checks of the model's draft, in order; each sees the draft as the ones before left it (``decision``
    # says how their verdicts combine): drop invalid citation numbers, numbers a second answer invents, a bare
    # "[1]" made the copied span or quote, Chinese characters written as the cited passages write them (traditional
    # or simplified), a bare figure given its unit, a list shorter than the cited one (a defect to repair), near-miss
    # constraints (evidence_checks), the LLM's verification (min_verification_yes_*), the claim (total − part
    # derivation, the LLM's verdict on the answer itself), per-sentence support flags (min_support_score), lexical
    # support (min_lexical_support). Add a check: a file in prompts/checks/ with build(parts), or
    # "package.module:factory", and its name here.
    checks: tuple[str, ...] = ("citations", "retry_numbers", "marker_quote", "script", "units", "full_list",
                               "constraints", "verification", "claim", "sentence_support", "lexical_support")
    # How the checks' verdicts decide: "chain" — the first check that refuses refuses the answer; "acceptance" —
    # every check runs and one calibrated score over their signals decides (prompts/acceptance.py, ``acceptance``
    # below; evidence against the answer and the ``acceptance.vetoes`` checks still refuse outright).
    decision: Literal["chain", "acceptance"] = "chain"
    # Repair before refusing: when a check names a fixable defect (a marker-only answer, a shorter list than the
    # cited one, a doubted figure among several), ask the model once more with it and keep the repaired answer if
    # it passes the same checks (one more generation for those answers only). "refused": only a draft the checks
    # refuse; "always": also one they keep (a marker-only draft's quote, a short list); "off".
    repair_defects: Literal["off", "refused", "always"] = "refused"
    # Ask, in the answer prompt, for the unit of a count or quantity and for the full list of a "which ones"
    # question (prompts/templates.shape_hint; a line for those questions only).
    state_shape: bool = False
    # A draft of citation markers alone ("[1]") to a question in one of these languages: the model copies the
    # answering words out of the cited passage, kept only when they stand there verbatim
    # (prompts/span_extraction.py), with the quote of the best-matching sentence as the fallback; in the other
    # languages the quote alone (prompts/marker_only_answer.py). English only: the packaged model answers English
    # questions with a bare marker far more often, and on the seeds bench Chinese spans lost a right answer and
    # showed a wrong one the quote had not (bench/RESULTS_KEEP_RIGHT.md, session 4).
    span_languages: tuple[str, ...] = ("en",)
    # The copied span: at most this many new tokens, and at most this share of the cited passage's length
    # (longer is a quote, not an answer).
    span_max_new_tokens: int = Field(32, ge=1)
    span_max_share: float = Field(0.5, gt=0, le=1)

    _known_parts = field_validator("gates", "checks")(_known_checks)

    # Tokens of the LLM's own tokenizer given to the numbered passages; on a 2-core CPU every 1000 prompt tokens
    # add ~10 s before the first answer token (bench/RESULTS_ANSWER.md).
    context_budget_tokens: int = Field(1024, ge=64)
    # Read the best passages first (0 = off, one pass over the whole budget): the model is asked with only the
    # passages that fit this many tokens, and the rest of context_budget_tokens is read only when that first
    # answer is a refusal or fails the checks; the wider prompt reuses the first one's evaluated passages. Off by
    # default (bench/RESULTS_TTFT.md): at 320 tokens about half the questions are answered after ~3 s instead of
    # ~9 s, but read from one passage the packaged model answered more near misses (Chinese near misses refused
    # 0.90 -> 0.75), and holding first-pass answers to first_pass_min_verification_yes = 0.9, which restores 0.90,
    # widens so many right answers that the median wait grows (9.4 -> 11.2 s on the seeds). Chunk packing only.
    first_pass_budget_tokens: int = Field(0, ge=0)
    # What of each passage goes into the prompt: "chunks" (whole passages, best first, trimmed at sentence ends to
    # fit) or "sentences" (those sharing words with the question, with their neighbours:
    # prompts/sentence_selection.py). Measured on the seeds and CMRC 2018 questions (bench/RESULTS_TTFT.md),
    # sentences did not keep the expected answer in the prompt more often than fewer whole chunks of the same token
    # count, so whole chunks stay the default.
    packing: Literal["sentences", "chunks"] = "chunks"
    # Sentence packing: its token budget (each passage's best sentence first, then richer excerpts of the best
    # passages while room is left), the best-matching sentences kept per passage and the sentences either side
    # (the best of the combinations measured).
    sentence_budget_tokens: int = Field(560, ge=32)
    focus_sentences: int = Field(3, ge=1)
    neighbour_sentences: int = Field(2, ge=0)
    # Refuse without calling the LLM when the best evidence (evidence_score_field) scores below this: set so that
    # almost no answerable question is refused; it only catches off-topic questions (bench/calibrate_gate.py).
    min_evidence_score: float = Field(0.79, ge=-1, le=1)
    # Refuse without calling the LLM when the question names something (Latin-script terms of a Chinese question,
    # inner-capital/digit words of an English one) that no packed passage mentions (prompts/question_names.py).
    require_question_names: bool = True
    # ... and, in a Chinese question, the two-word term it defines or asks the working of ("投机解码是怎么做的？"),
    # found when each word is written (prompts/question_names.subject_terms; bench/subject_term_check.py).
    require_subject_terms: bool = True
    # When the model refuses although the passages passed the gates, ask once more without the refusal option
    # (bench/RESULTS_ANSWER.md weighs what it wins against what it invents).
    retry_refusals: bool = True
    # Does the evidence an answer cites answer THIS question (prompts/evidence_match.py)? The constraint kinds held
    # against the cited sentences and their neighbours: "year", "date", "relative_time", "unit" (多少人 needs a
    # count of people), "relation" (a "when" needs a time, a "how many" a number), "figure" (the question's
    # "100米", "第五届", "6号线" against only other ones: prompts/quantities.pinning_figures), "role" (a "who the
    # director" cited by a sentence naming only other roles: prompts/asked_role.py), "variant" (a "Top-k" question
    # cited by a sentence naming Top-p and not Top-k: prompts/sibling_variants.py), "name" (quoted titles, coined
    # and Latin terms), "proper_noun" (an English question's capitalised words), "coverage" (min_question_coverage
    # of the question's words). Chosen by bench/RESULTS_NEAR_MISS.md and bench/RESULTS_KEEP_RIGHT.md.
    evidence_checks: tuple[Literal["year", "date", "relative_time", "unit", "relation", "figure", "role", "variant",
                                   "name", "proper_noun", "coverage"], ...] = ("year", "date", "relative_time", "unit",
                                                                              "relation", "figure", "role", "variant",
                                                                              "name")
    # Sentences either side of an answer's anchor sentence that count as its evidence.
    evidence_neighbours: int = Field(1, ge=0)
    min_question_coverage: float = Field(0.0, ge=0, le=1)
    min_coverage_tokens: int = Field(4, ge=1)
    # Ask the local LLM (when its backend can score a yes/no: llama.cpp) whether the cited evidence answers the
    # question (prompts/evidence_verification.py), and refuse below this probability of "yes"; <= 0 turns it off.
    # Per question language, chosen on the tuning half of the near-miss data (bench/RESULTS_NEAR_MISS.md): in
    # Chinese 0.7 refused as many near misses as 0.8 through the whole pipeline and fewer right answers; the
    # packaged model says "yes" less readily in English. Across languages (an English question over Chinese
    # passages) its verdict barely tells right answers from wrong ones, so only a clear "no" refuses. Costs one
    # forward pass (~1.6 s on 2 cores) per answer that passed the other checks. English 0.6, chosen on the
    # keep-right tuning half (bench/RESULTS_KEEP_RIGHT.md, session 4), let the report half's near misses through
    # (0.90 → 0.70 refused), so 0.75 stays.
    min_verification_yes_zh: float = Field(0.7, le=1)
    min_verification_yes_en: float = Field(0.75, le=1)
    min_verification_yes_cross: float = Field(0.5, le=1)

    # The acceptance decision (``decision = "acceptance"``, prompts/acceptance.py): its signals scored by a logistic
    # model (evidence against the answer and the vetoes refuse it whatever the score), fitted by
    # `python -m bench.fit_acceptance bench/results/keep_right_kr_acceptance.json` (2026-12-07) on the tuning half
    # of the keep-right development sets (46 drafts the score decides, 34 right; L2, C=1); threshold = the highest
    # refusing at most 5 % of the tuning half's right drafts. Its curve on the report half, and why the chain stays
    # the default: bench/RESULTS_KEEP_RIGHT.md.
    acceptance: AcceptanceModel = Field(default_factory=lambda: AcceptanceModel(
        intercept=-1.7803, threshold=0.5916,
        weights={"evidence_logit": 1.7412, "claim_logit": -0.0788, "conflict_name": -0.7793,
                 "low_lexical_support": -0.0113, "shape_mismatch": 0.0, "cross_language": 0.0, "retried": -0.9482,
                 "quoted": 0.4257}))
    # Ask the local LLM whether the answer itself is right by its cited sentences (prompts/checks/claim.py; the
    # total − part derivation runs either way). Off: over 137 stored drafts its verdict rescued no answer and
    # refused none the evidence verdict kept, and refitted its weight in the acceptance score fell to −0.08; it
    # cost 0.4–0.9 s after the last token idle (bench/RESULTS_KEEP_RIGHT.md). refuse_claim_yes > 0 turns it on.
    claim_verdict: bool = False
    # Below this p(yes) of the claim verdict (prompts/checks/claim.py) a figure among several in its cited
    # sentence is asked about again (prompts/answer_repair.py, "doubtful_figure") ...
    min_claim_yes: float = Field(0.5, ge=0, le=1)
    # ... and below this one the chain refuses the answer (0: the verdict is a signal only).
    refuse_claim_yes: float = Field(0.0, ge=0, le=1)

    # A first-pass answer (first_pass_budget_tokens) must reach at least this p(yes) as well: read from fewer
    # passages, the small model more often answers from a same-topic passage that lacks the answer (near misses
    # refused through the whole pipeline: 0.90 in one pass, 0.75 with the first pass at the usual thresholds,
    # 0.90 at 0.9; bench/RESULTS_TTFT.md). Below it the question is read over the whole budget, not refused.
    first_pass_min_verification_yes: float = Field(0.9, le=1)

    def verification_threshold(self, language: str, passage_language: str | None = None,
                               first_pass: bool = False) -> float:
        if passage_language is not None and passage_language != language:
            threshold = self.min_verification_yes_cross
        else:
            threshold = self.min_verification_yes_zh if language == "zh" else self.min_verification_yes_en
        return max(threshold, self.first_pass_min_verification_yes) if first_pass and threshold > 0 else threshold

    # An answer sentence whose support score against its cited passages is below this is flagged.
    min_support_score: float = Field(0.5, ge=-1, le=1)
    # Refuse an answer when fewer than this share of its content tokens occur in the passages it cites; <= 0 turns
    # the check off. Calibrated on saved answers (bench/calibrate_support.py, bench/RESULTS_ANSWER.md).
    min_lexical_support: float = Field(0.7, le=1)
    # ... judged only for answers with at least this many content tokens (a short answer hinges on one or two).
    min_lexical_tokens: int = Field(20, ge=1)
    refusal_zh: str = Field("根据现有文档无法回答该问题。", min_length=1)
    refusal_en: str = Field("The documents do not contain the answer to this question.", min_length=1)
    # Which retrieval score the evidence gate reads: "dense" (cosine, comparable across questions), "rerank",
    # "fused", "bm25" or "score" (the most refined stage available).
    evidence_score_field: Literal["dense", "rerank", "fused", "bm25", "score"] = "dense"
    # How answer sentences are checked against their cited passages: "embedder" (cosine with the retrieval
    # embedder) or a sentence_transformers.CrossEncoder model path / hub name.
    support_scorer: str = "embedder"
    # A question is answered in Chinese when at least this share of its letters are CJK characters.
    zh_min_cjk_share: float = Field(0.2, ge=0, le=1)
    # Characters of each passage the LangChain tool hands an agent: the packaged LLM's 4k-token context must hold
    # several tool results plus the conversation.
    tool_passage_chars: int = Field(300, ge=1)


class DialogueSettings(SettingsSection):
    """How a follow-up message is answered in the context of the conversation (app/answer/answer_pipeline.py)."""

    # What a message that depends on the conversation is retrieved with: "rewrite" (the local LLM writes a
    # standalone question; retrieval fuses it with the message), "append" (the previous question + the message),
    # "off" (the message alone). bench/RESULTS_DIALOGUE.md compares the three.
    follow_up: Literal["rewrite", "append", "off"] = "rewrite"
    # Resolve ordinals, 前者/后者, 它/its, 它们/each of them from the previous turn's lists, compared pair and
    # subject before asking the model (prompts/reference_resolution.py): no model call when the text allows it.
    resolve_references: bool = True
    # When no standalone form can be built (the rewrite discarded): "append" retrieves and judges the previous
    # question + the message, and the answer prompt shows the previous question beside the message; "message"
    # judges the bare message (before issue #26: a bare "后者…" is refused, whatever the documents hold).
    discarded_fallback: Literal["append", "message"] = "append"
    # A message this short (CJK characters of a Chinese one, words of an English one) is taken as a follow-up.
    short_message_chars_zh: int = Field(6, ge=0)
    short_message_words_en: int = Field(3, ge=0)
    # The rewrite: greedy, capped; the prompt sees the last turns only, each answer clipped.
    rewrite_max_new_tokens: int = Field(48, ge=8)
    rewrite_history_turns: int = Field(2, ge=1)
    rewrite_answer_chars: int = Field(160, ge=0)
    # Constrain the rewrite with a grammar (prompts/rewrite_grammar.py; llama_cpp only): one question line, and a
    # Chinese rewrite's Latin words only from the conversation. Off: not yet measured (bench/RESULTS_DIALOGUE.md).
    rewrite_grammar: bool = False
    # The rewrite guard (prompts/rewrite_guard.py): share of the message's own content tokens the rewrite must
    # keep, share of the rewrite's content tokens that may come from neither the message nor the conversation,
    # and the longest rewrite accepted.
    min_kept_share: float = Field(0.8, ge=0, le=1)
    max_new_token_share: float = Field(0.25, ge=0, le=1)
    max_rewrite_chars: int = Field(200, ge=10)
    # Fusing the retrievals of the standalone question and of the message (reciprocal rank fusion).
    fusion_rrf_k: int = Field(60, ge=0)
    original_weight: float = Field(0.5, ge=0)
    # Tokens of earlier turns placed in the answer prompt (the oldest drop first; the passages are packed first,
    # so they always fit). 0 = none: the standalone question alone carries the context. Off by default: with
    # earlier turns in its prompt the packaged 1.5B model restated the previous answer ("7341 [1]" to "它每天几点
    # 自动备份？", in the HTTP API's follow-up test and the terminal test); a larger model may use e.g. 256.
    history_budget_tokens: int = Field(0, ge=0)
