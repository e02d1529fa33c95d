"""The fault matrix's scenario rows (issue #27): hostile situations that are not damage to one file of the base,
each on a fresh copy of the matrix's base, against the faces it concerns.

- ``link_out_of_folder``: links in the ingested folder to ``/etc/passwd`` and to a folder elsewhere holding a
  secret. Ingest must skip both with a line each; no face may show the secret.
- ``hostile_file_name``: a document whose name retitles and clears the terminal and hides its type behind a bidi
  override, and whose text holds an override too. No face may print a control or bidi character raw.
- ``damaged_base_at_server_start``: the live catalog truncated before a real server starts. The server must start,
  say why on /health, refuse with a JSON error, and serve again once the catalog is put back.
- ``dns_rebinding``, ``cross_origin``: every read and write a web page could send, against a real server process,
  must be refused with nothing changed.
- ``upload_95_mb``: a 95 MB upload to a real server; its memory may grow by less than 24 MB.

Outcomes as in the matrix: ok, recovered (did its job and said what it skipped or repaired), refused (the attack or
the damage was turned away with a clear message), failed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import httpx

if TYPE_CHECKING:
    from app.server.process_harness import ServerProcess

SCENARIOS: dict[str, list[str]] = {
    "link_out_of_folder": ["ingest_change", "retrieval", "ask", "page"],
    "hostile_file_name": ["ingest_change", "retrieval", "ask", "page"],
    "damaged_base_at_server_start": ["server"],
    "dns_rebinding": ["server"],
    "cross_origin": ["server"],
    "upload_95_mb": ["server"],
}
_SECRET = "保险箱密码写在抽屉里"
_HOSTILE_NAME = "发票\u202efdp.exe\x1b]0;pwned\x07\x1b[2J.md"
_RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MINE = ("我的笔记.md", "# 我的笔记\n\n保险柜的备用钥匙放在书架第三层。\n".encode())
_PLANTED = ("我的笔记.md", "# 我的笔记\n\n备用钥匙已经交给了楼下的陌生人。\n".encode())
_GROWTH_LIMIT_MB = 24

# run_face(face, root) -> (outcome, message, everything the face showed)
FaceRunner = Callable[[str, Path], tuple[str, str, str]]


def _link_out_of_folder(root: Path) -> None:
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.md").write_text(f"# 私人\n\n{_SECRET}。\n", encoding="utf-8")
    (root / "docs" / "passwd.txt").symlink_to("/etc/passwd")
    (root / "docs" / "elsewhere").symlink_to(elsewhere)


def _hostile_file_name(root: Path) -> None:
    # It answers the matrix's question ("量化1是本文件第几段讨论的主题？"), so every face cites and shows it.
    (root / "docs" / _HOSTILE_NAME).write_text("# 发票\n\n量化1是本文件第1段讨论的主题\u202e，详见附件。\n",
                                               encoding="utf-8")
    bad = root / "docs" / "bad"
    bad.mkdir()
    (bad / _HOSTILE_NAME).write_bytes(b"")  # fails to load: its name is in the failure line


def run_reader_scenario(scenario: str, face: str, root: Path, ingest: Callable[[Path], None],
                        run_face: FaceRunner, stored_texts: Callable[[Path], str]) -> tuple[str, str]:
    """A scenario on the ingest, retrieval, ask or page face; the readers' base is ingested after the set-up."""
    if scenario == "link_out_of_folder":
        _link_out_of_folder(root)
    else:
        _hostile_file_name(root)
    if face != "ingest_change":
        ingest(root)
    outcome, message, shown = run_face(face, root)
    if outcome == "failed":
        return outcome, message
    if scenario == "link_out_of_folder":
        if "root:" in shown or _SECRET in shown or _SECRET in stored_texts(root) or "root:x:" in stored_texts(root):
            return "failed", "a file outside the folder was ingested or shown"
        if face == "ingest_change" and "symbolic link to /etc/passwd" not in message + shown:
            return "failed", f"the link was not named: {message}"
    elif (raw := _RAW.search(shown)) is not None:
        return "failed", f"printed {raw.group()!r} raw"
    elif "\\u202e" not in shown:
        return "failed", "the hostile name or text was not shown at all (the check would mean nothing)"
    return outcome, message


def run_server_scenario(scenario: str, root: Path, env: dict[str, str], documents: Callable[[Path], dict]) -> tuple[
        str, str]:
    """A scenario against a real server process over ``root``'s base (app/server/process_harness.py starts it)."""
    from app.server.process_harness import start_fake_server

    from ingest.store.kb_layout import generation_paths, read_current
    kb = root / "kb"
    catalog = generation_paths(kb, read_current(kb)).catalog
    intact = catalog.read_bytes()
    if scenario == "damaged_base_at_server_start":
        catalog.write_bytes(intact[: len(intact) // 2])
    if scenario == "upload_95_mb":  # saved (under a 100 MB upload limit), then refused by size without being read
        env = {**env, "DOCQA_LIMITS__MAX_UPLOAD_MB": "100", "DOCQA_LIMITS__MAX_FILE_MB": "90"}
    try:
        server = start_fake_server(env, root / "server.log", timeout=120)
    except RuntimeError as exc:
        outcome = "failed", f"the server did not start: {str(exc)[-200:]}"
    else:
        try:
            outcome = _against(scenario, server, catalog, intact, documents)
        finally:
            server.stop()
    if scenario == "damaged_base_at_server_start":
        catalog.write_bytes(intact)  # the damage is the scenario's, not the server's: put back before counting losses
    if outcome[0] != "failed" and "Traceback" in (root / "server.log").read_text(encoding="utf-8", errors="replace"):
        return "failed", f"a traceback in the server log ({outcome[1]})"
    return outcome


def _against(scenario: str, server: "ServerProcess", catalog: Path, intact: bytes,
             documents: Callable[[Path], dict]) -> tuple[str, str]:
    """The scenario's requests, once the server is up; (outcome, message)."""
    from app.server.process_harness import ASKED, attack_headers, hostile_requests, upload_memory
    kb = catalog.parents[2]  # kb/generations/<name>/catalog.sqlite3
    base = server.base_url
    if scenario == "damaged_base_at_server_start":
        health = httpx.get(base + "/health", timeout=30).json()
        listed = httpx.get(base + "/v1/kb/documents", timeout=30)
        if health.get("status") != "degraded" or listed.status_code != 503:
            return "failed", f"health {health}, documents {listed.status_code}"
        catalog.write_bytes(intact)
        if httpx.get(base + "/health", timeout=30).json() != {"status": "ok"}:
            return "failed", "not recovered after the catalog was put back"
        return "recovered", health["problem"]
    if scenario == "upload_95_mb":
        response, mb = upload_memory(server, 95 * 2**20)
        grew = max(mb["highest"] - mb["rss_before"], mb["peak_after"] - mb["peak_before"])
        message = (f"server RSS {mb['rss_before']:.1f} → {mb['rss_after']:.1f} MB, highest sample "
                   f"{mb['highest']:.1f} MB, peak {mb['peak_before']:.1f} → {mb['peak_after']:.1f} MB "
                   f"(+{grew:.1f} MB)")
        ok = response.status_code == 200 and grew < _GROWTH_LIMIT_MB
        return ("ok" if ok else "failed"), message
    saved = httpx.post(base + "/v1/kb/documents", headers=ASKED, timeout=60,
                       files=[("files", (_MINE[0], _MINE[1], "text/markdown"))]).json()
    listed = {d["name"]: d["id"] for d in httpx.get(base + "/v1/kb/documents", timeout=30).json()["documents"]}
    before = documents(kb)
    answers = hostile_requests(base, listed[_MINE[0]], attack_headers(scenario, server.port), _PLANTED)
    let_through = [what for what, response in answers if response.status_code != 403]
    if saved["files"][0]["status"] != "ingested" or let_through or documents(kb) != before:
        return "failed", f"let through: {', '.join(let_through) or 'none'}; base changed: {documents(kb) != before}"
    return "refused", f"{len(answers)} reads and writes refused (403)"
