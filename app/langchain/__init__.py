"""The LangChain face: the knowledge base as tools and a retriever, a grounded chat model, the local LLM as a
tool-calling chat model, and an offline agent example (``python -m app.langchain.agent_example``)."""
