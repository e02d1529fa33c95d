"""Text normalisation and structure-aware chunking."""
