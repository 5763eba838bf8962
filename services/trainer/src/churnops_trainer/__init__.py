"""ChurnOps trainer service."""
