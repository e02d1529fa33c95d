"""``python -m ingest [PATH ...]``: add, update and remove documents in the knowledge base.

Exit status: 0 all files ingested, 1 some files failed (the rest is committed), 2 usage or fatal error
(knowledge base locked, damaged or built by another embedder), 130 interrupted (knowledge base unchanged).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from tqdm.contrib.logging import logging_redirect_tqdm

from app.cli.base_choice import add_base_arguments, settings_from_args
from app.config import ConfigError
from app.wiring import quiet_model_libraries, run_ingest
from ingest.pipeline.ingest_pipeline import IngestOptions, IngestSetupError, use_generation
from ingest.pipeline.progress import TerminalProgress
from ingest.store.kb_lock import KnowledgeBaseLockedError
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.store.milvus.milvus_connection import STORE_URI_HELP, parse_store_uri

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder

# The sample corpus shipped with the repository, found from the package so any working directory works.
SAMPLE_CORPUS = Path(__file__).resolve().parents[2] / "data" / "sample"

EXIT_OK, EXIT_SOME_FAILED, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Ingest documents (txt, md, pdf, docx, html, xlsx, csv, pptx, images; scanned pages by OCR) "
                    "into the local knowledge base. Re-running is incremental: unchanged files are skipped, changed "
                    "ones replaced, deleted ones removed.")
    parser.add_argument("paths", nargs="*", type=Path,
                        help=f"files or folders to ingest (default: the sample corpus {SAMPLE_CORPUS})")
    add_base_arguments(parser)
    parser.add_argument("--store", metavar="STORE",
                        help=f"where the knowledge base is stored: 'folder' (default: FAISS files in the base's "
                             f"folder) or Milvus: {STORE_URI_HELP}")
    parser.add_argument("--ray", action="store_true",
                        help="embed with Ray Data (embedder.runner = \"ray\"; the 'scale' extra) to spread a big "
                             "ingest over cores, machines or GPUs")
    parser.add_argument("--device", choices=["cpu", "cuda"],
                        help="device for the embedder and the FAISS index (cuda falls back to cpu with a message)")
    parser.add_argument("--rebuild", action="store_true",
                        help="start a fresh knowledge base from PATHs (needed after changing the embedder)")
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    parser.add_argument("--follow-links", action="store_true",
                        help="also ingest files that symbolic links inside the folders point to when they lie "
                             "outside those folders (skipped by default, with a line naming each)")
    parser.add_argument("--use-generation", metavar="NAME",
                        help="make the committed generation NAME (e.g. gen-000003) live again, as a new generation "
                             "with its content; no PATHs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, no summary; errors only")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    return parser


def _embedder_device(device: str) -> str:
    """``device`` if torch can use it, else "cpu" with a message (asking for a missing GPU is not fatal)."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("note: --device cuda asked for, but torch sees no CUDA GPU; embedding on the CPU", file=sys.stderr)
            return "cpu"
    return device


def main(argv: Sequence[str] | None = None, embedder_factory: Callable[[], "Embedder"] | None = None) -> int:
    """Run the CLI; ``embedder_factory`` lets tests supply a fast deterministic embedder."""
    quiet_model_libraries()
    args = build_parser().parse_args(argv)
    # Level on the handler too: some libraries (bm25s) set DEBUG on their own logger, which the root level
    # would not filter.
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING if args.quiet or args.json else logging.INFO)
    logging.basicConfig(level=handler.level, format="%(message)s", handlers=[handler])
    try:
        settings = settings_from_args(args, create=not (args.dry_run or args.use_generation))
        if args.store:
            settings.store = settings.store.replace(**parse_store_uri(args.store))
    except (ConfigError, ValueError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    if args.ray:
        settings.embedder.runner = "ray"
    if args.device:
        settings.embedder.device = _embedder_device(args.device)
        settings.index.device = args.device  # the FAISS layer falls back to the CPU by itself, with a message
    if args.use_generation and (args.paths or args.rebuild or args.dry_run):
        print("error: --use-generation takes no PATHs, --rebuild or --dry-run", file=sys.stderr)
        return EXIT_FATAL
    paths = args.paths or [SAMPLE_CORPUS]
    bars = not (args.quiet or args.json)
    options = IngestOptions(rebuild=args.rebuild, dry_run=args.dry_run, follow_links=args.follow_links)
    if bars:
        options.progress = TerminalProgress()
    try:
        with logging_redirect_tqdm() if bars else contextlib.nullcontext():
            for active in logging.getLogger().handlers:  # the tqdm handler forgets the level
                active.setLevel(handler.level)
            if args.use_generation:
                report = use_generation(settings, args.use_generation)
            else:
                report = run_ingest(settings, paths, options, embedder_factory=embedder_factory)
    except (KnowledgeBaseLockedError, KnowledgeBaseError, IngestSetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except OSError as exc:  # e.g. the knowledge-base folder cannot be created or written
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except Exception:  # a bug, not bad input: show where, keep exit status 1 for "some files failed"
        logging.getLogger(__name__).exception("ingest failed unexpectedly; the knowledge base is unchanged")
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was committed; finished embeddings are cached for the next run",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(report.to_json())
    elif not args.quiet:
        print(report.summary())
    return EXIT_SOME_FAILED if report.failures else EXIT_OK

