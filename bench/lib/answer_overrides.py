"""``[answer]`` settings given on a benchmark's command line, so one run compares variants of the checks on the
same stored drafts (bench/lib/llm_cache.py) without a settings file per variant."""

from __future__ import annotations

import json

from app.config import Settings


def answer_overrides(pairs: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs (VALUE read as JSON when it is JSON: ``decision=acceptance``, ``repair_defects=false``,
    ``checks=["citations","verification"]``)."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def with_answer_settings(settings: Settings, pairs: list[str]) -> Settings:
    """``settings`` with the ``[answer]`` values of ``pairs`` applied (validated as the settings file would be)."""
    settings.answer = type(settings.answer).model_validate({**settings.answer.model_dump(), **answer_overrides(pairs)})
    return settings
