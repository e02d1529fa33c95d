"""``python -m app.server.testing --port N``: the real docqa HTTP server (uvicorn, the app factory of
``python -m app.server``) with stand-in models, for the tests and benchmarks of the server's own logic: the hash
embedder (ingest/testing/fake_embedder.py) and a generator that quotes the first sentence of the best passage
(app/generation/testing.py; optionally slowly, to fill the queue). Settings come from the environment, as for
``python -m app.server``. It lives here, not in tests/ or bench/, because both start it.

    python -m app.server.testing --port N [--token-delay 0.05] [--padding 20] [--real-embedder] [--real-generator]
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.server.testing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--padding", type=int, default=0)
    parser.add_argument("--embed-delay", type=float, default=0.0, help="seconds per passage batch (slow ingests)")
    parser.add_argument("--real-embedder", action="store_true", help="the configured embedder instead of the hash")
    parser.add_argument("--real-generator", action="store_true", help="the configured LLM instead of the fake")
    args = parser.parse_args(argv)

    import uvicorn

    from app.config import load_settings
    from app.generation.testing import QuotingGenerator
    from app.server.app import create_app
    from app.server.auth import check_startup
    from app.server.services import ServerServices
    from ingest.testing.fake_embedder import FakeEmbedder

    settings = load_settings()
    settings = settings.model_copy(update={"server": settings.server.replace(host=args.host, port=args.port)})
    check_startup(settings.server)
    generator = None if args.real_generator else (lambda: QuotingGenerator(args.token_delay, args.padding))
    embedder = None if args.real_embedder else (lambda: FakeEmbedder(delay=args.embed_delay))
    services = ServerServices(settings, embedder_factory=embedder, generator_factory=generator)
    uvicorn.run(create_app(services), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
