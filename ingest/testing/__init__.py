"""Stand-ins and test data for the ingest layer, importable by the tests and the benchmarks alike (neither reaches
into the other's folder), as ``langchain_core`` ships its fake models: a fast hashed embedder, small generated
corpora, generated PDFs, Word files and "scanned" pages. Nothing in the product imports them."""
