"""File loaders: one per format, each returning the document's text with its pages."""
