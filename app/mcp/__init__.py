"""The MCP face: ``python -m app.mcp`` serves the knowledge bases to Model Context Protocol clients (desktop
assistants, IDEs, agent frameworks) over stdio or streamable HTTP."""
