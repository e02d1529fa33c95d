"""``python -m app.server``: serve docqa over HTTP (OpenAI-compatible chat and embeddings, knowledge-base endpoints).

Exit status: 2 when the configuration is bad or the server refuses to start (e.g. a non-loopback address without an
API key), one line on stderr."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from app.config import ConfigError, load_settings
from app.server.auth import StartupRefused, check_startup
from app.wiring import quiet_model_libraries


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.server", description=__doc__)
    parser.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: server.port, 8000)")
    parser.add_argument("--kb", type=Path, help="knowledge-base folder (default: the configured one)")
    parser.add_argument("--config", type=Path, help="TOML settings file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    quiet_model_libraries()
    args = _parse_args(argv)
    overrides: dict = {"kb_dir": args.kb} if args.kb else {}
    try:
        settings = load_settings(args.config, **overrides)
        changes = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        if changes:
            settings = settings.model_copy(update={"server": settings.server.replace(**changes)})
        check_startup(settings.server)
    except (ConfigError, ValueError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except StartupRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from app.server.app import create_app
    from app.server.services import ServerServices

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_app(ServerServices(settings))
    print(f"docqa serving {settings.kb_path} on http://{settings.server.host}:{settings.server.port}/v1 "
          f"(API key {'required' if settings.server.api_key else 'not required'})", file=sys.stderr)
    uvicorn.run(app, host=settings.server.host, port=settings.server.port, log_level="info",
                timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
