"""Fault-injection matrix: every file of a small knowledge base × a kind of damage × every face, checking that
each cell ends with an automatic recovery or a clear one-line refusal, never a traceback, and that no committed
document is lost.

    python -m bench.fault_matrix                      # the full matrix (~5 min on 2 shared cores)
    python -m bench.fault_matrix --files CURRENT --faults deleted --faces ingest_change --json

The base is built by the real ingest with the fast stand-in embedder (ingest/testing/fake_embedder.py): two generations,
an embedding cache, token vectors. For each cell a fresh copy is damaged, the face runs in this process (the real
CLI ``main`` functions, the real chat page under Streamlit's AppTest; only the embedder and the LLM are stand-ins),
and then the base is checked: it must open and hold every old document with the same chunk texts, either as it
is or, if the command refused, once the damaged file is put back (a refusal must not have destroyed anything).

Outcomes: ``ok`` (the face did its job, nothing to say), ``recovered`` (it did its job and printed a one-line
notice of what it repaired), ``refused`` (exit status 2 with a one-line ``error:`` message, or the page's error
box), ``failed`` (a traceback, an unexpected exit status, or several error lines). ``lost`` counts old documents
missing or changed after the cell.

As root, the ``permissions`` fault means nothing (root reads a chmod-000 file), so the runner re-starts itself
without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, like a normal user.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import html
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.hostile_scenarios import SCENARIOS, run_reader_scenario, run_server_scenario  # noqa: E402

from ingest.store.kb_layout import generation_number  # noqa: E402

FAULTS = ["deleted", "emptied", "truncated", "garbage_header", "corrupted_middle", "permissions"]
# Faults of the pointer alone: CURRENT set back to the older committed generation (a restored backup, a sync tool, a
# hand edit), naming one that never existed, a folder in its place, a symbolic link in its place.
POINTER_FAULTS = ["older_generation", "unknown_generation", "folder", "symlink"]
FACES = ["ingest_nochange", "ingest_change", "retrieval", "ask", "page"]
QUESTION = "量化1是本文件第几段讨论的主题？"
_ENV_MARK = "DOCQA_FAULT_MATRIX_NO_DAC"


@dataclass
class Cell:
    file: str
    fault: str
    face: str
    outcome: str = ""
    exit_code: int | None = None
    lost: int = 0
    generation_deleted: bool = False  # the live generation of before the cell is gone (only GC of older ones may delete)
    message: str = ""  # the notice or error line (or what went wrong)


@dataclass
class Matrix:
    cells: list[Cell] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"cells": len(self.cells), "ok": 0, "recovered": 0, "refused": 0, "failed": 0,
               "documents_lost": sum(c.lost for c in self.cells), "cells_losing_documents": 0}
        out["generations_deleted"] = 0
        for cell in self.cells:
            out[cell.outcome] += 1
            out["cells_losing_documents"] += cell.lost > 0
            out["generations_deleted"] += cell.generation_deleted
        return out


# --- the base ----------------------------------------------------------------------------------------------------

def _config(root: Path) -> Path:
    from ingest.testing.small_corpus import write_config
    return write_config(root / "docqa.toml", keep_generations=2, gc_grace_seconds=0.0)


def build_base(root: Path) -> dict[str, list[str]]:
    """Two ingests into ``root/kb`` from ``root/docs``; returns every document's chunk texts (path -> texts)."""
    from ingest.testing.fake_embedder import FakeEmbedder
    from ingest.testing.small_corpus import write_corpus

    from app.cli.ingest_cli import main as ingest_main
    docs = root / "docs"
    write_corpus(docs, 4)
    config = _config(root)
    with _captured():
        assert ingest_main(["--quiet", "--kb", str(root / "kb"), "--config", str(config), str(docs)],
                           embedder_factory=FakeEmbedder) == 0
        write_corpus(docs / "more", 2, tag="增补")
        assert ingest_main(["--quiet", "--kb", str(root / "kb"), "--config", str(config), str(docs)],
                           embedder_factory=FakeEmbedder) == 0
    return documents_of(root / "kb")


def documents_of(kb_dir: Path) -> dict[str, list[str]]:
    from ingest.store.knowledge_base import KnowledgeBase
    with KnowledgeBase.open(kb_dir) as kb:
        texts: dict[str, list[str]] = {}
        for chunk in kb.iter_chunks():
            texts.setdefault(chunk.doc_id, []).append(chunk.text)
        return {doc.path: texts.get(doc.content_hash, []) for doc in kb.documents()}


def base_files(kb_dir: Path) -> list[str]:
    """Every file of the base a reader or writer touches: the top level and the live generation (relative)."""
    from ingest.store.kb_layout import read_current
    live = read_current(kb_dir)
    files = []
    for path in sorted(kb_dir.rglob("*")):
        relative = path.relative_to(kb_dir).as_posix()
        if not path.is_file() or (relative.startswith("generations/") and f"/{live}/" not in relative):
            continue
        files.append(relative)
    return files


# --- damage ------------------------------------------------------------------------------------------------------

def damage(path: Path, fault: str) -> None:
    data = path.read_bytes()
    if fault == "older_generation":
        from ingest.store.kb_layout import committed_generations
        path.write_text(committed_generations(path.parent)[-1] + "\n", encoding="utf-8")
    elif fault == "unknown_generation":
        path.write_text("gen-999999\n", encoding="utf-8")
    elif fault == "folder":
        path.unlink()
        path.mkdir()
        (path / "notes.txt").write_text("a folder where the pointer belongs", encoding="utf-8")
    elif fault == "symlink":
        outside = path.parent.parent / "pointer-target"
        outside.write_bytes(data)
        path.unlink()
        path.symlink_to(outside)
    elif fault == "deleted":
        path.unlink()
    elif fault == "emptied":
        path.write_bytes(b"")
    elif fault == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif fault == "garbage_header":
        path.write_bytes(os.urandom(min(64, max(len(data), 8))) + data[64:])
    elif fault == "corrupted_middle":
        middle = len(data) // 2
        span = max(1, min(64, len(data) // 4))
        path.write_bytes(data[:middle] + bytes(b ^ 0x5A for b in data[middle:middle + span]) + data[middle + span:])
    elif fault == "permissions":
        path.chmod(0)
    else:
        raise ValueError(fault)


# --- faces -------------------------------------------------------------------------------------------------------

class _StderrProxy:
    """A stream for the logging handler that writes to whatever sys.stderr is now (so redirects capture logs)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def _captured():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


class _Generator:
    """A stand-in LLM: cites passage 1 (the answer pipeline's checks then decide what to keep)."""

    name = "fault-matrix"
    n_ctx = 4096

    def stream(self, messages, settings):
        yield "根据资料，答案见 [1]。"

    def count_tokens(self, text: str) -> int:
        return len(text)

    def count_prompt_tokens(self, messages) -> int:
        return sum(len(m["content"]) + 4 for m in messages)


def _patch_models() -> None:
    """The embedder and the LLM are stand-ins everywhere the faces get them (app/wiring.py)."""
    from ingest.testing.fake_embedder import FakeEmbedder

    import app.wiring as wiring
    wiring.load_embedder = lambda settings: FakeEmbedder()
    wiring.build_generator = lambda settings: _Generator()


def run_cli_face(face: str, root: Path) -> tuple[int | None, str, str]:
    """(exit code or None for an escaped exception, stdout, stderr)."""
    from ingest.testing.fake_embedder import FakeEmbedder
    from ingest.testing.small_corpus import write_corpus

    kb, config, docs = str(root / "kb"), str(root / "docqa.toml"), root / "docs"
    with _captured() as (out, err):
        try:
            if face.startswith("ingest"):
                from app.cli.ingest_cli import main
                if face == "ingest_change":
                    write_corpus(docs / "new", 1, tag="新增")
                code = main(["--quiet", "--kb", kb, "--config", config, str(docs)], embedder_factory=FakeEmbedder)
            elif face == "retrieval":
                from app.cli.retrieval_cli import main
                code = main([QUESTION, "--kb", kb, "--config", config, "--rerank"])
            else:
                from app.cli.ask import main
                code = main([QUESTION, "--kb", kb, "--config", config])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001 - an escaped exception is the failure being measured
            import traceback
            traceback.print_exc(file=sys.stderr)
            code = None
    return code, out.getvalue(), err.getvalue()


def run_page_face(root: Path) -> tuple[str, list[str], list[str], str]:
    """('exception'|'ok', error texts, info/warning texts, everything shown) of the chat page loading and answering
    one question."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()
    os.environ["DOCQA_KB_DIR"] = str(root / "kb")
    os.environ["DOCQA_CONFIG"] = str(root / "docqa.toml")
    os.environ["DOCQA_HOME"] = str(root / "home")
    try:
        with _captured():
            at = AppTest.from_file(str(REPO / "app" / "web" / "chat_page.py"), default_timeout=60).run()
            if not at.exception:
                at.chat_input(key="question").set_value(QUESTION).run()
    finally:
        for name in ("DOCQA_KB_DIR", "DOCQA_CONFIG", "DOCQA_HOME"):
            os.environ.pop(name, None)
    if at.exception:
        return "exception", [e.value for e in at.exception], [], ""

    def text(element) -> str:  # the page escapes document-derived text as HTML entities (app/web/ui_render.py)
        return html.unescape(element.value).replace("\u2060", "")

    errors = [text(e) for e in [*at.error, *at.sidebar.error]]
    # Notes outside the chat (what opening the base repaired); an answer's own refusal box is not one.
    in_chat = {e.value for message in at.chat_message for e in [*message.info, *message.warning]}
    notes = [text(e) for e in [*at.info, *at.warning, *at.sidebar.warning] if e.value not in in_chat]
    shown = [*(e.value for e in [*at.markdown, *at.sidebar.markdown, *at.caption, *at.error, *at.sidebar.error,
                                 *at.info, *at.warning, *at.sidebar.warning]), *(h.proto.body for h in at.html)]
    return "ok", errors, notes, html.unescape("\n".join(shown))


# --- classification ----------------------------------------------------------------------------------------------

def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def classify_cli(face: str, code: int | None, stderr: str) -> tuple[str, str]:
    lines = _lines(stderr)
    if code is None or "Traceback" in stderr:
        return "failed", (lines[-1] if lines else "exception")
    errors = [line for line in lines if line.startswith(("error:", "question rejected:"))]
    if code == 2:
        return ("refused", errors[0]) if len(errors) == 1 else ("failed", " | ".join(lines[-3:]))
    if code in (0, 1) and not errors:
        return ("recovered", lines[0]) if lines else ("ok", "")
    return "failed", f"exit {code}: " + " | ".join(lines[-3:])


def lost_documents(root: Path, relative: str, original: bytes, mode: int,
                   expected: dict[str, list[str]]) -> int:
    """Old documents missing or changed: as the base is now, else once the damaged file is put back."""
    kb = root / "kb"

    def missing() -> int | None:
        try:
            found = documents_of(kb)
        except Exception:  # noqa: BLE001 - the base does not open: decided after restoring
            return None
        return sum(1 for path, texts in expected.items() if found.get(path) != texts)

    now = missing()
    if now == 0:
        return 0
    target = kb / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    if target.exists():
        target.chmod(0o600)
    target.write_bytes(original)
    target.chmod(mode)
    restored = missing()
    return len(expected) if restored is None else restored


def run_cell(pristine: Path, work: Path, expected: dict[str, list[str]], relative: str, fault: str,
             face: str) -> Cell:
    cell = Cell(relative, fault, face)
    root = work / "cell"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(pristine, root, symlinks=True)
    target = root / "kb" / relative
    original, mode = target.read_bytes(), target.stat().st_mode & 0o7777
    live_before = max(p.name for p in (root / "kb" / "generations").iterdir() if p.name.startswith("gen-"))
    damage(target, fault)
    with _deletions_recorded() as deleted:
        _run_face(cell, root, face)
    # Documents re-ingested from their sources would hide a deleted generation, and a new one may take its name:
    # every folder deletion is watched, besides checking the folder itself.
    newest = generation_number(live_before)
    cell.generation_deleted = (not (root / "kb" / "generations" / live_before).is_dir()
                               or any((generation_number(Path(d).name) or -1) >= newest for d in deleted))
    cell.lost = lost_documents(root, relative, original, mode, expected)
    _make_removable(root)
    return cell


@contextlib.contextmanager
def _deletions_recorded():
    """Every folder ``shutil.rmtree`` deletes while the face runs (the writer deletes generations with it)."""
    deleted: list[str] = []
    original = shutil.rmtree

    def recording(path, *args, **kwargs):
        deleted.append(str(path))
        return original(path, *args, **kwargs)

    shutil.rmtree = recording
    try:
        yield deleted
    finally:
        shutil.rmtree = original


def _run_face(cell: Cell, root: Path, face: str) -> str:
    """Run ``face`` on the cell's base, set its outcome, and return everything it showed."""
    if face == "page":
        status, errors, notes, shown = run_page_face(root)
        if status == "exception":
            cell.outcome, cell.message = "failed", " | ".join(errors)[:300]
        elif errors:
            cell.outcome, cell.message = "refused", errors[0][:300]
        else:
            cell.outcome, cell.message = ("recovered", notes[0][:300]) if notes else ("ok", "")
        return shown
    code, out, stderr = run_cli_face(face, root)
    cell.exit_code = code
    cell.outcome, cell.message = classify_cli(face, code, stderr)
    return out + stderr


@contextlib.contextmanager
def _quoting_generator():
    """A stand-in LLM that quotes passage [1], with the evidence gate open (the hash embedder's cosines are low): the
    scenario's document is then cited, so its name and text reach every face's output."""
    import app.wiring as wiring
    from app.generation.testing import QuotingGenerator
    before = wiring.build_generator
    wiring.build_generator = lambda settings: QuotingGenerator()
    os.environ["DOCQA_ANSWER__MIN_EVIDENCE_SCORE"] = "0"
    try:
        yield
    finally:
        wiring.build_generator = before
        os.environ.pop("DOCQA_ANSWER__MIN_EVIDENCE_SCORE", None)


def run_scenario(pristine: Path, work: Path, expected: dict[str, list[str]], scenario: str, face: str) -> Cell:
    """One cell of a scenario row (bench/hostile_scenarios.py) on a fresh copy of the base."""
    from ingest.testing.fake_embedder import FakeEmbedder

    from app.cli.ingest_cli import main as ingest_main
    cell = Cell(f"scenario: {scenario}", "-", face)
    root = work / "cell"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(pristine, root, symlinks=True)

    def ingest(at: Path) -> None:
        with _captured():
            ingest_main(["--quiet", "--kb", str(at / "kb"), "--config", str(at / "docqa.toml"), str(at / "docs")],
                        embedder_factory=FakeEmbedder)

    def run_face(name: str, at: Path) -> tuple[str, str, str]:
        shown = _run_face(cell, at, name)
        return cell.outcome, cell.message, shown

    def stored_texts(at: Path) -> str:
        return "\n".join(t for texts in documents_of(at / "kb").values() for t in texts)

    if face == "server":
        env = {"DOCQA_KB_DIR": str(root / "kb"), "DOCQA_CONFIG": str(root / "docqa.toml"),
               "DOCQA_HOME": str(root / "home"), "DOCQA_ANSWER__MIN_EVIDENCE_SCORE": "0"}
        cell.outcome, cell.message = run_server_scenario(scenario, root, env, documents_of)
    else:
        with _deletions_recorded(), _quoting_generator():
            cell.outcome, cell.message = run_reader_scenario(scenario, face, root, ingest, run_face,
                                                             stored_texts)
    try:
        found = documents_of(root / "kb")
    except Exception as exc:  # noqa: BLE001 - a base that no longer opens has lost everything it held
        found, cell.message = {}, f"{cell.message} | the base no longer opens: {exc}"[:300]
    cell.lost = sum(1 for path, texts in expected.items() if found.get(path) != texts)
    _make_removable(root)
    return cell


def _make_removable(root: Path) -> None:
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):
            path.chmod(0o700 if path.is_dir() else 0o600)


# --- running -----------------------------------------------------------------------------------------------------

def _dac_override_effective() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & 0b110)
    return False


def _drop_file_capabilities() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_matrix(files: list[str] | None, faults: list[str], faces: list[str], scenarios: list[str],
               progress: bool = True) -> Matrix:
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[logging.StreamHandler(_StderrProxy())], force=True)
    _patch_models()
    matrix = Matrix()
    with tempfile.TemporaryDirectory(prefix="docqa-faults-") as tmp:
        work = Path(tmp)
        # Built where every cell runs (the catalog stores absolute paths), then kept aside as the pristine copy.
        expected = build_base(work / "cell")
        pristine = work / "pristine"
        (work / "cell").rename(pristine)
        chosen = [f for f in base_files(pristine / "kb") if files is None or any(f.endswith(n) for n in files)]
        total = sum(1 for r in chosen for f in faults if f not in POINTER_FAULTS or r == "CURRENT") * len(faces)
        total += sum(len(SCENARIOS[name]) for name in scenarios)

        def show(cell: Cell) -> None:
            if progress:
                print(f"[{len(matrix.cells)}/{total}] {cell.file} {cell.fault} {cell.face}: {cell.outcome}"
                      f"{' LOST ' + str(cell.lost) if cell.lost else ''}"
                      f"{' GEN-DELETED' if cell.generation_deleted else ''} {cell.message[:140]}",
                      file=sys.__stderr__, flush=True)

        for relative in chosen:
            for fault in faults:
                if fault in POINTER_FAULTS and relative != "CURRENT":
                    continue  # the pointer's own faults apply to CURRENT only
                for face in faces:
                    matrix.cells.append(run_cell(pristine, work, expected, relative, fault, face))
                    show(matrix.cells[-1])
        for name in scenarios:
            for face in SCENARIOS[name]:
                matrix.cells.append(run_scenario(pristine, work, expected, name, face))
                show(matrix.cells[-1])
    return matrix


def print_table(matrix: Matrix) -> None:
    faces = FACES + (["server"] if any(cell.face == "server" for cell in matrix.cells) else [])
    print("| file | " + " | ".join(faces) + " |")
    print("|---|" + "---|" * len(faces))
    rows: dict[tuple[str, str], dict[str, Cell]] = {}
    for cell in matrix.cells:
        rows.setdefault((cell.file, cell.fault), {})[cell.face] = cell
    for (file, fault), by_face in rows.items():
        marks = [by_face[f].outcome + (f" LOST {by_face[f].lost}" if by_face[f].lost else "")
                 + (" GEN-DELETED" if by_face[f].generation_deleted else "") if f in by_face else "" for f in faces]
        print(f"| {file}{f' ({fault})' if fault != '-' else ''} | " + " | ".join(marks) + " |")
    print()
    print(json.dumps(matrix.counts()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fault_matrix", description=__doc__.split("\n")[0])
    parser.add_argument("--files", help="comma-separated suffixes of base files to damage (default: all)")
    parser.add_argument("--faults", default=",".join(FAULTS + POINTER_FAULTS))
    parser.add_argument("--faces", default=",".join(FACES))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="scenario rows (bench/hostile_scenarios.py) to run, or 'none'")
    parser.add_argument("--json", action="store_true", help="print every cell and the counts as JSON")
    parser.add_argument("--quiet", action="store_true", help="no line per cell on stderr")
    args = parser.parse_args(argv)
    if os.geteuid() == 0 and _dac_override_effective() and not os.environ.get(_ENV_MARK):
        env = {**os.environ, _ENV_MARK: "1", "PYTHONPATH": str(REPO)}
        return subprocess.run([sys.executable, "-m", "bench.fault_matrix", *(argv if argv is not None
                                                                             else sys.argv[1:])],
                              cwd=REPO, env=env, preexec_fn=_drop_file_capabilities).returncode
    started = time.perf_counter()
    scenarios = [] if args.scenarios == "none" else args.scenarios.split(",")
    matrix = run_matrix(args.files.split(",") if args.files else None, args.faults.split(","),
                        args.faces.split(","), scenarios, progress=not args.quiet)
    counts = matrix.counts() | {"seconds": round(time.perf_counter() - started, 1)}
    if args.json:
        print(json.dumps({"counts": counts, "cells": [asdict(c) for c in matrix.cells]}, ensure_ascii=False))
    else:
        print_table(matrix)
        print(json.dumps(counts))
    return 0 if counts["failed"] == counts["documents_lost"] == counts["generations_deleted"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
