"""Starts the real docqa HTTP server (uvicorn, the app factory of ``python -m app.server``) with stand-in models, for
tests and benchmarks about the server's own logic: the hash embedder and a generator that quotes the first
sentence of the best passage (optionally slowly, to fill the queue). Settings come from the environment, as for
``python -m app.server``.

    python tests/server_launcher.py --port N [--token-delay 0.05] [--tokens 20]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_embedder import FakeEmbedder  # noqa: E402


class QuotingGenerator:
    """Answers with the first sentence of passage [1] and its marker, in small pieces, ``token_delay`` seconds
    apart; ``padding`` extra pieces before the answer make a generation last longer (queue tests)."""

    name = "quoting-fake"
    n_ctx = 4096

    def __init__(self, token_delay: float = 0.0, padding: int = 0) -> None:
        self.token_delay, self.padding = token_delay, padding

    def stream(self, messages, settings):
        prompt = "\n".join(m["content"] for m in messages)
        passages = re.findall(r"<passage id=(\d+)[^>]*>(.*?)</passage>", prompt, re.S)
        if not passages:
            yield "NO PASSAGES"
            return
        number, body = passages[0]
        sentence = re.split(r"(?<=[。！？.!?])", body.strip(), maxsplit=1)[0].strip()
        answer = f"{sentence} [{number}]"
        pieces = [""] * self.padding + [answer[i:i + 4] for i in range(0, len(answer), 4)]
        for piece in pieces:
            if self.token_delay:
                time.sleep(self.token_delay)
            yield piece

    def count_tokens(self, text: str) -> int:
        return len(text)

    def count_prompt_tokens(self, messages) -> int:
        return sum(len(m["content"]) + 4 for m in messages)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--padding", type=int, default=0)
    parser.add_argument("--embed-delay", type=float, default=0.0, help="seconds per passage batch (slow ingests)")
    parser.add_argument("--real-embedder", action="store_true", help="the configured embedder instead of the hash")
    parser.add_argument("--real-generator", action="store_true", help="the configured LLM instead of the fake")
    args = parser.parse_args()

    import uvicorn

    from app.config import load_settings
    from app.server.app import create_app
    from app.server.auth import check_startup
    from app.server.services import ServerServices

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
