"""The question a follow-up message stands for: the message itself, or (when it depends on the conversation) its
references resolved from the previous turn's structure (no model), else a standalone rewrite by the local LLM
that passed the rewrite guard, else the previous question with the message appended, so a follow-up is never
judged bare (``[dialogue] follow_up = "append"`` skips the rewrite; bench/RESULTS_DIALOGUE.md measures each)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import cast

from app.generation.base import Generator, GrammarGenerator
from app.generation.settings import GenerationSettings
from prompts.conversation import Turn
from prompts.follow_up import FollowUpCheck, detect_follow_up
from prompts.language import detect_language
from prompts.reference_resolution import resolve_references
from prompts.rewrite_grammar import conversation_terms, rewrite_grammar
from prompts.rewrite_guard import check_rewrite
from prompts.settings import AnswerSettings, DialogueSettings
from prompts.standalone_prompt import build_rewrite_messages, read_rewrite

# How the standalone question was made (Answer.follow_up).
FIRST, INDEPENDENT, OFF, APPENDED, RESOLVED, REWRITTEN, DISCARDED = (
    "first message", "independent", "off", "appended", "resolved", "rewritten", "rewrite discarded")
# Methods whose text is one standalone question (retrieval fuses it with the message's own retrieval).
STANDALONE_FORMS = (RESOLVED, REWRITTEN)


@dataclass
class StandaloneQuestion:
    text: str  # what retrieval and the checks judge
    method: str
    cues: list[str] = field(default_factory=list)
    reason: str = ""  # why a rewrite was discarded
    rewrite: str = ""  # the model's rewrite, also when discarded
    seconds: float = 0.0
    # When ``text`` is the previous question glued to the message: the question the answer prompt asks (the
    # message, references resolved where they could be) and the previous question it shows beside it.
    asked: str = ""
    previous_question: str = ""

    @property
    def prompt_question(self) -> str:
        return self.asked or self.text


def rewrite_settings(generation: GenerationSettings, dialogue: DialogueSettings) -> GenerationSettings:
    """Greedy and short: the rewrite is one question, and every token delays the answer."""
    return generation.replace(temperature=0.0, max_new_tokens=dialogue.rewrite_max_new_tokens,
                              no_repeat_ngram_size=0)


def _history_texts(history: list[Turn]) -> list[str]:
    return [text for turn in history for text in (turn.question, turn.answer, *(p.text for p in turn.passages))]


def _appended(message: str, history: list[Turn], method: str, cues: list[str], max_chars: int,
              **discarded: str | float) -> StandaloneQuestion:
    """The previous question with ``message`` appended (retrieval and the checks); the answer prompt asks the
    message with the previous question beside it."""
    previous = history[-1].question
    return StandaloneQuestion(f"{previous} {message}"[-max_chars:], method, cues, asked=message,
                              previous_question=previous, **discarded)  # type: ignore[arg-type]


def standalone_question(message: str, history: list[Turn], generator: Generator, generation: GenerationSettings,
                        dialogue: DialogueSettings, answer: AnswerSettings, max_chars: int) -> StandaloneQuestion:
    """The question to retrieve and judge for ``message`` asked after ``history`` (oldest first)."""
    if not history:
        return StandaloneQuestion(message, FIRST)

    def follow_up_cues(text: str) -> FollowUpCheck:
        return detect_follow_up(text, answer.zh_min_cjk_share, dialogue.short_message_chars_zh,
                                dialogue.short_message_words_en)

    check = follow_up_cues(message)
    if not check.dependent:
        return StandaloneQuestion(message, INDEPENDENT)
    if dialogue.follow_up == "off":
        return StandaloneQuestion(message, OFF, check.cues)
    if dialogue.follow_up == "append":
        return _appended(message, history, APPENDED, check.cues, max_chars)
    language = detect_language(message, answer.zh_min_cjk_share)
    resolution = resolve_references(message, history, language) if dialogue.resolve_references else None
    if resolution is not None and not follow_up_cues(resolution.text).dependent:
        return StandaloneQuestion(resolution.text[:max_chars], RESOLVED, check.cues)
    # Resolved but still elliptical ("后者呢？" → "Adapter 呢？"): the model may complete it; if not, the resolved
    # message is what the fallback appends.
    message_or_resolved = resolution.text if resolution is not None else message
    start = time.perf_counter()
    messages = build_rewrite_messages(history[-dialogue.rewrite_history_turns:], message, language,
                                      dialogue.rewrite_answer_chars)
    settings = rewrite_settings(generation, dialogue)
    if dialogue.rewrite_grammar and hasattr(generator, "stream_constrained"):  # llama.cpp; others unconstrained
        grammar = rewrite_grammar(language, conversation_terms([message, *_history_texts(history)]))
        reply = "".join(cast(GrammarGenerator, generator).stream_constrained(messages, settings, grammar))
    else:
        reply = "".join(generator.stream(messages, settings))
    rewrite = read_rewrite(reply)
    seconds = time.perf_counter() - start
    verdict = check_rewrite(message, rewrite, _history_texts(history), answer.zh_min_cjk_share,
                            dialogue.min_kept_share, dialogue.max_new_token_share,
                            min(dialogue.max_rewrite_chars, max_chars))
    reason = verdict.reason
    if verdict.accepted and rewrite == message:  # the model echoed the message: nothing was resolved
        reason = "the rewrite repeats the message"
    elif verdict.accepted and (still := follow_up_cues(rewrite)).dependent:
        # e.g. the previous answer copied in front of an unresolved "它"
        reason = f"the rewrite still refers back ({', '.join(still.cues)})"
    if not reason:
        return StandaloneQuestion(rewrite, REWRITTEN, check.cues, "", rewrite, seconds)
    if dialogue.discarded_fallback == "message":
        return StandaloneQuestion(message, DISCARDED, check.cues, reason, rewrite, seconds)
    return _appended(message_or_resolved, history, DISCARDED, check.cues, max_chars, reason=reason,
                     rewrite=rewrite, seconds=seconds)
