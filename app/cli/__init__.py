"""Terminal faces: ``python -m ingest``, ``python -m retrieval``, ``python -m app.cli.ask``,
``python -m app.cli.chat``."""
