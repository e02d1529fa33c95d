"""The answer core every face shares: question → passages → grounded, checked, cited ``Answer`` (the pipeline),
follow-ups made standalone, conversations, and which sentence of a passage an answer drew on. Imports no face."""
