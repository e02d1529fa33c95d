"""The knowledge base on Milvus (Milvus Lite file or server, Milvus standalone or cluster): see milvus_store."""
