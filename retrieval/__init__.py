"""Finding the passages that answer a question (reads a knowledge base through the store interface, never writes).

The store (``ingest/store/store_protocol.py``: the FAISS folder or Milvus) gives dense and BM25 candidates;
everything after that is here and the same for every store:
fusion           convex / reciprocal-rank fusion              reranker        MaxSim and CrossEncoder rerankers
neighbour_merge  widen hits, drop duplicates                  hybrid_retriever the pipeline, with timings
langchain_retriever  LangChain BaseRetriever                  results         ScoredChunk, RetrievalResult
__main__         ``python -m retrieval "问题"``
"""
