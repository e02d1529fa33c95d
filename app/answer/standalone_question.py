"""The question a follow-up message stands for: the message itself, or (when it depends on the conversation) a
standalone rewrite by the local LLM that passed the rewrite guard, or the previous question with the message
appended (the cheap alternative, ``[dialogue] follow_up = "append"``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.generation.base import Generator
from app.generation.settings import GenerationSettings
from prompts.conversation import Turn
from prompts.follow_up import detect_follow_up
from prompts.language import detect_language
from prompts.rewrite_guard import check_rewrite
from prompts.settings import AnswerSettings, DialogueSettings
from prompts.standalone_prompt import build_rewrite_messages, read_rewrite

# How the standalone question was made (Answer.follow_up).
FIRST, INDEPENDENT, OFF, APPENDED, REWRITTEN, DISCARDED = (
    "first message", "independent", "off", "appended", "rewritten", "rewrite discarded")


@dataclass
class StandaloneQuestion:
    text: str
    method: str
    cues: list[str] = field(default_factory=list)
    reason: str = ""  # why a rewrite was discarded
    rewrite: str = ""  # the model's rewrite, also when discarded
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return self.method in (APPENDED, REWRITTEN)


def rewrite_settings(generation: GenerationSettings, dialogue: DialogueSettings) -> GenerationSettings:
    """Greedy and short: the rewrite is one question, and every token delays the answer."""
    return generation.replace(temperature=0.0, max_new_tokens=dialogue.rewrite_max_new_tokens,
                              no_repeat_ngram_size=0)


def _history_texts(history: list[Turn]) -> list[str]:
    return [text for turn in history for text in (turn.question, turn.answer, *(p.text for p in turn.passages))]


def standalone_question(message: str, history: list[Turn], generator: Generator, generation: GenerationSettings,
                        dialogue: DialogueSettings, answer: AnswerSettings, max_chars: int) -> StandaloneQuestion:
    """The question to retrieve and judge for ``message`` asked after ``history`` (oldest first)."""
    if not history:
        return StandaloneQuestion(message, FIRST)
    check = detect_follow_up(message, answer.zh_min_cjk_share, dialogue.short_message_chars_zh,
                             dialogue.short_message_words_en)
    if not check.dependent:
        return StandaloneQuestion(message, INDEPENDENT)
    if dialogue.follow_up == "off":
        return StandaloneQuestion(message, OFF, check.cues)
    if dialogue.follow_up == "append":
        appended = f"{history[-1].question} {message}"
        return StandaloneQuestion(appended[-max_chars:], APPENDED, check.cues)
    start = time.perf_counter()
    language = detect_language(message, answer.zh_min_cjk_share)
    messages = build_rewrite_messages(history[-dialogue.rewrite_history_turns:], message, language,
                                      dialogue.rewrite_answer_chars)
    reply = "".join(generator.stream(messages, rewrite_settings(generation, dialogue)))
    rewrite = read_rewrite(reply)
    seconds = time.perf_counter() - start
    verdict = check_rewrite(message, rewrite, _history_texts(history), answer.zh_min_cjk_share,
                            dialogue.min_kept_share, dialogue.max_new_token_share,
                            min(dialogue.max_rewrite_chars, max_chars))
    if not verdict.accepted:
        return StandaloneQuestion(message, DISCARDED, check.cues, verdict.reason, rewrite, seconds)
    if rewrite == message:  # the model echoed the message: nothing was resolved
        return StandaloneQuestion(message, DISCARDED, check.cues, "the rewrite repeats the message", rewrite,
                                  seconds)
    still = detect_follow_up(rewrite, answer.zh_min_cjk_share, dialogue.short_message_chars_zh,
                             dialogue.short_message_words_en)
    if still.dependent:  # e.g. the previous answer copied in front of an unresolved "它"
        return StandaloneQuestion(message, DISCARDED, check.cues,
                                  f"the rewrite still refers back ({', '.join(still.cues)})", rewrite, seconds)
    return StandaloneQuestion(rewrite, REWRITTEN, check.cues, "", rewrite, seconds)
