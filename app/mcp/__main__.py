"""``python -m app.mcp``: serve the knowledge bases to MCP clients.

    python -m app.mcp                      # stdio: for desktop clients that start the server themselves
    python -m app.mcp --http [--port N]    # streamable HTTP on 127.0.0.1 (http://127.0.0.1:8765/mcp)

On stdio, the protocol owns the standard output: everything else the process (or a native library) would print
goes to the standard error instead. Exit status 2 when the configuration is bad or the server refuses to start
(an address other than loopback without an API key), one line on stderr.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import anyio

from app.config import ConfigError, Settings, load_settings
from app.http_guard.api_key import BearerKeyGuard, StartupRefused, check_startup
from app.mcp.settings import McpSettings
from app.wiring import quiet_model_libraries


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.mcp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    parser.add_argument("--host", help="address to listen on with --http (default: mcp.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port with --http (default: mcp.port, 8765)")
    parser.add_argument("--base", help="the knowledge base tools use when a call names none (default: kb_name)")
    parser.add_argument("--config", type=Path, help="TOML settings file")
    return parser.parse_args(argv)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config, **({"kb_name": args.base} if args.base else {}))
    changes = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if changes:
        settings = settings.model_copy(update={"mcp": settings.mcp.replace(**changes)})
    return settings


async def _serve_stdio(server) -> None:
    """FastMCP's stdio loop, with the protocol on a private copy of the standard output and file descriptor 1
    pointed at stderr, so a stray print (ours or llama.cpp's) can never corrupt a message."""
    from mcp.server.stdio import stdio_server

    protocol_out = io.TextIOWrapper(os.fdopen(os.dup(sys.stdout.fileno()), "wb"), encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    async with stdio_server(stdout=anyio.wrap_file(protocol_out)) as (read_stream, write_stream):
        await server._mcp_server.run(read_stream, write_stream, server._mcp_server.create_initialization_options())


def checked_settings(args: argparse.Namespace) -> Settings | None:
    """The settings, or None after one line on stderr saying why the server cannot start."""
    try:
        settings = _settings(args)
        if args.http:
            check_startup(settings.mcp.host, settings.mcp.api_key, "DOCQA_MCP__API_KEY or [mcp] api_key")
    except (ConfigError, ValueError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return None
    except StartupRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return settings


def main(argv: list[str] | None = None) -> int:
    quiet_model_libraries()
    args = _parse_args(argv)
    settings = checked_settings(args)
    if settings is None:
        return 2
    from app.mcp.services import McpServices

    serve(McpServices(settings), args.http)
    return 0


def http_app(server, mcp: McpSettings):
    """The streamable-HTTP app behind the loopback guard (web pages the user opens cannot reach it: the HTTP API's
    Host, Origin and simple-request rules) and then the API-key rule."""
    from app.http_guard.loopback_guard import GuardPolicy, install_loopback_guard

    app = server.streamable_http_app()
    app.add_middleware(BearerKeyGuard, api_key=mcp.api_key)
    # Added last, so it runs first: a refused page never reaches the key check or the MCP session manager.
    install_loopback_guard(app, GuardPolicy.of([*mcp.allowed_hosts, mcp.host], mcp.allowed_origins))
    return app


def serve(services, http: bool) -> None:
    """Serve ``services`` (an McpServices) on stdio, or on streamable HTTP behind the loopback guard and the
    API-key rule."""
    from mcp.server.transport_security import TransportSecuritySettings

    from app.mcp.mcp_server import build_server

    # The SDK's own DNS-rebinding check would duplicate the loopback guard and ignore [mcp] allowed_hosts.
    server = build_server(services, TransportSecuritySettings(enable_dns_rebinding_protection=False))
    if not http:
        anyio.run(_serve_stdio, server)
        return
    import uvicorn

    settings = services.settings
    mcp = settings.mcp
    app = http_app(server, mcp)
    print(f"docqa MCP server on http://{mcp.host}:{mcp.port}{mcp.path} (base {settings.kb_name!r}; API key "
          f"{'required' if mcp.api_key else 'not required'})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=mcp.host, port=mcp.port, log_level="warning", timeout_graceful_shutdown=5)


if __name__ == "__main__":
    sys.exit(main())
