"""Settings of the MCP server (the ``[mcp]`` section): where its streamable-HTTP transport listens and who may call
it. The stdio transport (desktop clients start the server themselves) needs none of them."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ingest.settings import SettingsSection


class McpSettings(SettingsSection):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    # Where the streamable-HTTP endpoint lives on that port.
    path: str = "/mcp"
    # Bearer token HTTP clients must send: required when `host` is not a loopback address (the server refuses to
    # start without one), and on every address once set — the HTTP API's rule. DOCQA_MCP__API_KEY, not a flag.
    api_key: SecretStr | None = None
    # Host names and browser origins allowed besides loopback ones (the HTTP API's loopback guard, same meaning as
    # [server] allowed_hosts / allowed_origins): web pages the user opens must not reach the documents.
    allowed_hosts: list[str] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)
    # Passages the search tool returns when the client does not say, and the most it may ask for.
    default_passages: int = Field(5, ge=1)
    max_passages: int = Field(20, ge=1)
    # Characters of each passage's text in search results (the resource gives whole chunks).
    passage_chars: int = Field(1200, ge=100)
