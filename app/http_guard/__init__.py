"""Shared by every HTTP server docqa starts (the OpenAI-compatible server, an MCP server): the guard that keeps
web pages the user happens to open from reading or changing the knowledge base through a loopback port."""
