"""The real web page (``app/web/chat_page.py``) with the stand-in LLM of app/generation/testing.py, which answers with
the first sentence of the best passage, cited: for browser tests of the page's own logic (bases, documents,
switching) that do not need the real model's words. Everything else (embedder, stores, retrieval, checks) is real.
Run by ``streamlit run tests/page_with_quoting_llm.py`` (tests/page_server.py)."""

import runpy
from pathlib import Path

import app.wiring as wiring
from app.generation.testing import QuotingGenerator

wiring.build_generator = lambda settings: QuotingGenerator()
runpy.run_path(str(Path(__file__).resolve().parent.parent / "app" / "web" / "chat_page.py"), run_name="__main__")
