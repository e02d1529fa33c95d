"""The ingest pipeline that joins loaders, chunking, embedding and the store."""
