"""``python -m app.server``: docqa over HTTP — OpenAI-compatible grounded chat, embeddings and knowledge-base
endpoints, one local LLM shared by many clients through a bounded queue."""
