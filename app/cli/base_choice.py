"""Which knowledge base a terminal command works on: the same three options on every CLI (``--kb-name`` picks a
named base, ``--kb`` a folder for the default one, ``--config`` the settings file), read the same way."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.config import ConfigError, Settings, base_registry, load_settings, settings_for_base
from ingest.store.base_registry import DEFAULT_BASE, BaseRegistryError


def add_base_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kb-name", metavar="NAME",
                        help="the named knowledge base to use (default: kb_name in the settings, else 'default'; "
                             "`python -m app.cli.bases` lists them)")
    parser.add_argument("--kb", type=Path, help="the default knowledge base's folder (default: Settings.kb_path)")
    parser.add_argument("--config", type=Path, help="TOML settings file")


def settings_from_args(args: argparse.Namespace, create: bool = False, **overrides: Any) -> Settings:
    """The settings for the base ``args`` name. ``create``: a named base that does not exist yet is created (the
    ingest does this; a question never creates an empty base). Raises ConfigError with one line."""
    if args.kb and args.kb_name and args.kb_name.casefold() != DEFAULT_BASE:
        raise ConfigError("--kb sets the default base's folder; use it without --kb-name, or --kb-name alone")
    if args.kb:
        overrides["kb_dir"] = args.kb
    settings = load_settings(args.config, **overrides)
    name = args.kb_name or settings.kb_name
    if name.casefold() == settings.kb_name.casefold():
        return settings
    registry = base_registry(settings)
    try:
        if create and not registry.has(name):
            base = registry.create(name)
            print(f"created knowledge base {base.name!r} in {base.folder}", file=sys.stderr)
    except BaseRegistryError as exc:
        raise ConfigError(str(exc)) from None
    return settings_for_base(settings, name)
