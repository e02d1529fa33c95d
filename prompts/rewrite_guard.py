"""Accept a standalone rewrite only when it is the message made explicit, not a different question.

A small model asked to rewrite sometimes answers, drifts to the previous question, or fills the subject with a
name it made up. Such a rewrite would retrieve (and the refusal gates would judge) the wrong question, so it is
discarded and the message is used as it is. Tokens are the keyword-search tokens (rjieba words + CJK bigrams +
English words and numbers, stopwords dropped)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from ingest.store.text_tokenizer import tokenize
from prompts.follow_up import reference_spans
from prompts.language import _CJK, detect_language
from prompts.question_names import _name_pattern, question_names

_BIGRAM = "#"  # the tokenizer's prefix of CJK character bigrams


@dataclass
class RewriteCheck:
    accepted: bool
    reason: str = ""


def _without_references(message: str, language: str) -> str:
    """The message with its pronouns blanked: they are meant to be replaced, not kept."""
    chars = list(message)
    for start, end in reference_spans(message, language):
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def check_rewrite(message: str, rewrite: str, history_texts: list[str], zh_min_cjk_share: float,
                  min_kept_share: float, max_new_token_share: float, max_chars: int) -> RewriteCheck:
    """Whether ``rewrite`` may stand for ``message``: same language, not too long, keeps at least
    ``min_kept_share`` of the message's own content tokens, names nothing the message and the conversation
    (``history_texts``: earlier questions, answers, cited passages) do not, and brings at most
    ``max_new_token_share`` of its content words from elsewhere."""
    rewrite = unicodedata.normalize("NFKC", rewrite).strip()
    if not rewrite:
        return RewriteCheck(False, "empty rewrite")
    if len(rewrite) > max_chars:
        return RewriteCheck(False, f"rewrite longer than {max_chars} characters")
    language = detect_language(message, zh_min_cjk_share)
    if detect_language(rewrite, zh_min_cjk_share) != language:
        return RewriteCheck(False, "rewrite is not in the message's language")
    own = set(tokenize(_without_references(message, language)))
    written = set(tokenize(rewrite))
    # Words decide when the message has any: a faithful rewrite may reorder its phrases ("它还有什么俗称" →
    # "X 的俗称是什么"), which breaks character bigrams but keeps the words.
    own = {t for t in own if not t.startswith(_BIGRAM)} or own
    if own:
        # A Chinese word may be kept inside a longer one: "这个湖" → "赛里木湖" keeps 湖 (one jieba word there).
        kept_tokens = {t for t in own if t in written or (_CJK.search(t) and t.lstrip(_BIGRAM) in rewrite)}
        kept = len(kept_tokens) / len(own)
        if kept < min_kept_share:
            dropped = ", ".join(sorted(t for t in own - kept_tokens if not t.startswith(_BIGRAM))[:5])
            return RewriteCheck(False, f"rewrite keeps {kept:.2f} of the message's words" +
                                (f" (drops {dropped})" if dropped else ""))
    context = unicodedata.normalize("NFKC", "\n".join([message, *history_texts]))
    invented = [n for n in question_names(rewrite, language) if not _name_pattern(n).search(context)]
    if invented:
        return RewriteCheck(False, "rewrite names " + ", ".join(f"'{n}'" for n in invented)
                            + ", which the conversation does not")
    known = set(tokenize(context))
    words = {t for t in written if not t.startswith(_BIGRAM)}  # junction bigrams of a rewrite are always new
    new = words - known
    if words and len(new) / len(words) > max_new_token_share:
        return RewriteCheck(False, "rewrite adds words the conversation does not hold: "
                            + ", ".join(sorted(new)[:5]))
    return RewriteCheck(True)
