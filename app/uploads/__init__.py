"""Uploads into the knowledge base, shared by the chat page and the HTTP server (neither face imports the other):
saving files under safe names, then the same incremental ingest as ``python -m ingest``."""
