"""The compiled-tree evaluator (see tables.py)."""
