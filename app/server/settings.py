"""Settings of the HTTP server (the ``[server]`` section): where it listens, who may call it, how much it accepts."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from ingest.settings import SettingsSection


class ServerSettings(SettingsSection):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # Bearer token clients must send. Required when `host` is not a loopback address (the server refuses to start
    # without one); when set it is required on every address. Give it as DOCQA_SERVER__API_KEY, not on a command line.
    api_key: SecretStr | None = None
    # Host names the server answers to besides localhost, *.localhost, IP addresses and `host` (e.g. "docqa.lan",
    # "host.docker.internal"); "*" = any. Other names are refused: that is how a DNS-rebinding web page looks.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Browser origins (scheme://host[:port]) whose pages may call the server besides pages on localhost /
    # 127.0.0.1 / [::1] (any port); "null" for file:// pages, "*" = any. Other sites' pages are refused.
    allowed_origins: list[str] = Field(default_factory=list)
    # The knowledge base's name in model ids ("docqa:<kb_name>"); "" = the knowledge-base folder's name.
    kb_name: str = ""
    # Questions waiting for the LLM beyond the one it is answering; more are refused with 429.
    queue_size: int = Field(8, ge=0)
    # Seconds a client told 429 is asked to wait (Retry-After).
    retry_after_s: int = Field(10, ge=1)
    # Largest JSON request body (a chat conversation, a retrieval query, an embeddings batch).
    max_body_mb: float = Field(1.0, gt=0)
    # Largest multipart upload request (all files together; each file is also held to limits.max_upload_mb).
    max_upload_request_mb: float = Field(100.0, gt=0)
    max_upload_files: int = Field(20, ge=1)
    # Uploads received at once (each is written to disk as it arrives); more are answered 429 before their body
    # is read, so a flood of uploads cannot fill the disk or the file table.
    max_concurrent_uploads: int = Field(2, ge=1)
    # Texts per /v1/embeddings call.
    max_embedding_inputs: int = Field(256, ge=1)
    # Earlier turns of a conversation passed to the pipeline (the most recent ones).
    max_history_turns: int = Field(8, ge=0)
    # Extra folders a re-scan (POST /v1/kb/rescan) ingests besides the uploads folder and the catalogued files.
    scan_paths: list[Path] = Field(default_factory=list)
    # Streaming: the model's draft is sent as it is generated; when the checks change it (a withdrawn or corrected
    # answer), the checked answer is appended after this separator.
    correction_separator: str = "\n\n---\n"
