"""Build the ordered lists of gates and checks that ``[answer] gates`` and ``[answer] checks`` name.

An entry is the name of a module in this folder (``"constraints"`` → ``prompts/checks/constraints.py``, whose
``build(parts)`` makes the check) or, for a check kept elsewhere, ``"package.module:factory"`` (any callable
taking the ``CheckParts``, a check class included). So adding a check is one new file and one settings entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from prompts.checks.base import AnswerCheck, PassageGate
from prompts.evidence_verification import YesNoScorer
from prompts.grounding_check import SupportScorer
from prompts.settings import AnswerSettings
from prompts.span_extraction import ShortWriter

PACKAGE = "prompts.checks"

Part = TypeVar("Part", AnswerCheck, PassageGate)


@dataclass(frozen=True)
class CheckParts:
    """What a gate or check may be built from: the ``[answer]`` settings (read when it runs, so a changed value
    applies) and the models the wiring loaded."""

    settings: AnswerSettings
    # The LLM when its backend can score a yes/no answer (llama.cpp), else None.
    yes_no: YesNoScorer | None
    # Scores answer sentences against the passages they cite.
    support: SupportScorer
    # The LLM writing a short greedy reply (an answer copied out of a passage), or None.
    writer: ShortWriter | None = None


class CheckLoadError(ValueError):
    """A gate or check named in the settings cannot be built; the message names the setting and the entry."""


def _factory(entry: str, setting: str) -> Callable[[CheckParts], object]:
    module_name, _, attribute = entry.partition(":") if ":" in entry else (f"{PACKAGE}.{entry}", "", "build")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CheckLoadError(f"{setting}: {entry!r} names no module ({exc})") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise CheckLoadError(f"{setting}: {entry!r}: {module_name} has no callable {attribute!r}")
    return factory


def _load(entries: Sequence[str], parts: CheckParts, kind: type[Part], setting: str, what: str) -> list[Part]:
    built: list[Part] = []
    for entry in entries:
        part = _factory(entry, setting)(parts)
        if not isinstance(part, kind):
            raise CheckLoadError(f"{setting}: {entry!r} builds a {type(part).__name__}, not {what}")
        built.append(part)
    return built


def load_gates(parts: CheckParts) -> list[PassageGate]:
    """The gates of ``[answer] gates``, in order."""
    return _load(parts.settings.gates, parts, PassageGate, "answer.gates", "a passage gate (check_passages)")


def load_checks(parts: CheckParts) -> list[AnswerCheck]:
    """The checks of ``[answer] checks``, in order."""
    return _load(parts.settings.checks, parts, AnswerCheck, "answer.checks", "an answer check (check)")
