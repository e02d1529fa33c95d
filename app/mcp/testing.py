"""``python -m app.mcp.testing [--http --port N]``: the real MCP server (the same transports and tools as
``python -m app.mcp``) with stand-in models — the hash embedder and a generator quoting the best passage's first
sentence — for tests of the face's own logic (protocol, arguments, errors, the HTTP guard) without loading an LLM.
Settings come from the environment, as for ``python -m app.mcp``."""

from __future__ import annotations

import sys

from app.mcp.__main__ import _parse_args, checked_settings, serve


def main(argv: list[str] | None = None) -> int:
    from app.generation.testing import QuotingGenerator
    from app.mcp.services import McpServices
    from ingest.testing.fake_embedder import FakeEmbedder

    args = _parse_args(argv)
    settings = checked_settings(args)
    if settings is None:
        return 2
    serve(McpServices(settings, embedder_factory=FakeEmbedder, generator_factory=QuotingGenerator), args.http)
    return 0


if __name__ == "__main__":
    sys.exit(main())
