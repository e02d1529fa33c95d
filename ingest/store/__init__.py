"""The knowledge-base store: catalog, vector/ANN index, keyword index, token store, manifest, lock, writer, reader."""
