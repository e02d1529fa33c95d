"""Finding the passages that answer a question (reads a knowledge base, never writes one).

text_tokenizer   keyword tokens for Chinese/English text      keyword_index   BM25 index (built at ingest time)
dense_search     FAISS search with the query vector           fusion          convex / reciprocal-rank fusion
reranker         MaxSim and CrossEncoder rerankers            neighbour_merge widen hits, drop duplicates
hybrid_retriever the pipeline of the above, with timings      langchain_retriever  LangChain BaseRetriever
results          ScoredChunk, RetrievalResult                 __main__        ``python -m retrieval "问题"``
"""
