"""``python -m app.cli.bases``: list, create, rename and delete the knowledge bases under the data folder.

    python -m app.cli.bases                      # every base: name, documents, passages, folder (or its problem)
    python -m app.cli.bases create 项目资料
    python -m app.cli.bases rename 项目资料 旧项目
    python -m app.cli.bases delete 旧项目 --yes  # removes its documents and uploads

A base is used with ``--kb-name NAME`` on ``python -m ingest`` (which also creates it), ``python -m retrieval``,
``app.cli.ask`` and ``app.cli.chat``; the default base ("default") cannot be renamed or deleted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.answer.knowledge_bases import list_bases
from app.config import ConfigError, Settings, base_registry, load_settings
from app.wiring import knowledge_store
from ingest.store.base_registry import BaseRegistryError
from ingest.visible_text import visible


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.cli.bases", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="TOML settings file")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    commands = p.add_subparsers(dest="command")
    commands.add_parser("list", help="every base (the default when no command is given)")
    create = commands.add_parser("create", help="a new, empty base")
    create.add_argument("name")
    rename = commands.add_parser("rename", help="give a base another name (its folder stays)")
    rename.add_argument("name")
    rename.add_argument("new_name")
    delete = commands.add_parser("delete", help="remove a base with its documents and uploads")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="confirm: the base's documents and uploads are removed")
    return p


def _list(settings: Settings, as_json: bool) -> None:
    # The counts and problems as every face lists them (app/answer/knowledge_bases.py); the folder from the registry.
    folders = {base.name: str(base.folder or base.kb_dir) for base in base_registry(settings).list()}
    rows = [{"name": base.name, "folder": folders.get(base.name, ""), "documents": base.documents,
             "passages": base.chunks, "problem": base.problem} for base in list_bases(settings, knowledge_store)]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        state = f"problem: {row['problem']}" if row["problem"] else (
            f"{row['documents']} documents, {row['passages']} passages")
        print(visible(f"{row['name']}\t{state}\t{row['folder']}"))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        registry = base_registry(settings)
        if args.command in (None, "list"):
            _list(settings, args.json)
        elif args.command == "create":
            base = registry.create(args.name)
            print(visible(f"created knowledge base {base.name!r} in {base.folder}; add documents with "
                          f"`python -m ingest --kb-name {base.name} PATH`"))
        elif args.command == "rename":
            base = registry.rename(args.name, args.new_name)
            print(visible(f"renamed {args.name!r} to {base.name!r}"))
        elif args.command == "delete":
            if not args.yes:
                print(visible(f"deleting {args.name!r} removes its documents and uploads: add --yes to confirm"),
                      file=sys.stderr)
                return 2
            registry.delete(args.name)
            print(visible(f"deleted knowledge base {args.name!r}"))
    except (ConfigError, BaseRegistryError) as exc:
        print(visible(f"error: {exc}"), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
