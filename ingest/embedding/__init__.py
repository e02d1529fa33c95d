"""The embedder: model conversion, compute type, OpenVINO encoder, embedding cache, Ray runner."""
