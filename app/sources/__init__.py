"""The cited place on the original: a citation's page rendered with the cited sentence highlighted, or its slide,
row or passage in context. Shared by the faces (the web page, the HTTP server); renders images, never HTML."""
