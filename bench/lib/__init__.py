"""Shared helpers of the benchmarks: eval data, corpora, knowledge bases, scoring. Runnable scripts live one level
up (bench/*.py) and import only from here, never from each other."""
