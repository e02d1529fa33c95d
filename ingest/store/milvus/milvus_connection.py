"""Reaching Milvus: a local Milvus Lite path or a server URI, the token, and every failure as one clear line.

``pymilvus`` speaks to all of them with the same calls: ``MilvusClient("kb.db")`` starts Milvus Lite inside this
process on that folder (one process at a time: Milvus Lite locks it), ``MilvusClient(uri="http://host:19530",
token=...)`` reaches a Milvus Lite server (``milvus-lite server``), Milvus standalone or a cluster.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ingest.store.knowledge_base import KnowledgeBaseError

# What `python -m ingest --store` accepts besides "folder".
STORE_URI_HELP = ("milvus:///path/kb.db (a Milvus Lite file), milvus://HOST:PORT or milvus+https://HOST:PORT "
                  "(a server), with ?collection=NAME to name the collections; the token comes from "
                  "DOCQA_STORE__TOKEN, never the command line")
LOCAL_SUFFIX = ".db"


class MilvusStoreError(KnowledgeBaseError):
    """Milvus cannot be reached, refused the token, or holds something this base cannot use."""


def parse_store_uri(value: str) -> dict[str, str]:
    """``--store`` as [store] settings: "folder" → {"backend": "folder"}; a ``milvus://`` URI → backend, uri and
    (when given) collection. Raises ValueError with what is accepted."""
    if value == "folder":
        return {"backend": "folder"}
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in ("milvus", "milvus+http", "milvus+https"):
        raise ValueError(f"--store {value!r}: expected 'folder' or {STORE_URI_HELP}")
    if parts.username or parts.password:
        raise ValueError("--store: put the token in DOCQA_STORE__TOKEN (or [store] token), not in the URI, "
                         "where other users see it in the process list")
    store = {"backend": "milvus"}
    if parts.netloc in (".", "..", "~"):  # milvus://./kb.db: a path relative to here (or home)
        store["uri"] = str(Path(parts.netloc + parts.path).expanduser())
    elif parts.netloc:
        store["uri"] = f"{'https' if scheme == 'milvus+https' else 'http'}://{parts.netloc}"
    elif parts.path:
        if not parts.path.endswith(LOCAL_SUFFIX):
            raise ValueError(f"--store {value!r}: a Milvus Lite file must end in {LOCAL_SUFFIX!r}")
        store["uri"] = parts.path
    collection = parse_qs(parts.query).get("collection")
    if collection:
        store["collection"] = collection[0]
    return store


def is_local(uri: str) -> bool:
    return uri.endswith(LOCAL_SUFFIX) and "://" not in uri


def _quiet_libraries() -> None:
    # Milvus Lite logs a traceback when it cannot lock its folder (docqa says it in one line), pymilvus warns that
    # Milvus Lite's iterators use client-side timestamps, and jieba (Milvus Lite's Chinese analyzer, in this
    # process for a local file) announces its dictionary: only their errors should reach the terminal.
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    # Milvus Lite's in-process gRPC server logs a traceback for each RPC it does not implement (the iterator's
    # timestamp probe, which pymilvus then does without); the client sees real failures as errors anyway.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    try:
        import jieba  # imported here so that its import does not reset the level set below
    except ImportError:
        return
    jieba.setLogLevel(logging.WARNING)


class GuardedClient:
    """A ``MilvusClient`` whose every failure (and that of the iterators it returns) is a MilvusStoreError in one
    line: the faces print it, the ingest aborts its generation on it."""

    def __init__(self, target: object, uri: str):
        self._target = target
        self._uri = uri

    def __getattr__(self, name: str):
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def guarded(*args, **kwargs):
            try:
                result = attribute(*args, **kwargs)
            except MilvusStoreError:
                raise
            except Exception as exc:  # MilvusException, grpc.RpcError, connection resets
                raise MilvusStoreError(describe_failure(self._uri, exc)) from None
            return GuardedClient(result, self._uri) if name == "query_iterator" else result

        return guarded


def connect(uri: str, token: str, timeout: float) -> GuardedClient:
    """A client for ``uri``; MilvusStoreError in one line when Milvus is missing, unreachable, locked by another
    process or refuses the token."""
    try:
        from pymilvus import MilvusClient, MilvusException
    except ImportError:
        raise MilvusStoreError("the Milvus store needs the 'milvus' extra: pip install -e '.[milvus]' "
                               "(pymilvus and milvus-lite)") from None
    _quiet_libraries()
    if is_local(uri):
        folder = Path(uri).expanduser().absolute()
        folder.parent.mkdir(parents=True, exist_ok=True)
        uri = str(folder)
    try:
        return GuardedClient(MilvusClient(uri=uri, token=token, timeout=timeout), uri)
    except MilvusException as exc:
        raise MilvusStoreError(describe_failure(uri, exc)) from None


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in chain):  # pymilvus raises "e from e"
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def describe_failure(uri: str, exc: Exception) -> str:
    """One line for a failed Milvus call: what went wrong where, and what to do."""
    message = getattr(exc, "message", "") or str(exc)
    code = getattr(exc, "code", None)
    # pymilvus reports a refused token as "fail connecting"; the gRPC status it wraps says UNAUTHENTICATED.
    lowered = " ".join(str(e) for e in _causes(exc)).lower()
    if is_local(uri) and "open local milvus failed" in lowered:
        return (f"Milvus Lite file {uri} is open in another process (Milvus Lite lets one process open a file); "
                f"stop it, or share the file through a server: `milvus-lite server --data-dir {uri}` and "
                f"[store] uri = \"http://127.0.0.1:19530\"")
    if "unauthenticated" in lowered or "auth check failure" in lowered or "permission denied" in lowered:
        return (f"Milvus at {uri} refused the token: set the right one in [store] token or DOCQA_STORE__TOKEN "
                "(nothing was changed)")
    if code == 2 or "fail connecting" in lowered or "unavailable" in lowered or "deadline" in lowered:
        return (f"Milvus at {uri} cannot be reached ({message.split(',')[0]}); start it or fix [store] uri "
                "(nothing was changed)")
    return f"Milvus at {uri}: {message} (nothing was changed)"
