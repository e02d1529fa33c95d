"""Local LLM backends behind one streaming ``Generator`` protocol (llama.cpp, transformers, OpenAI-compatible)."""
