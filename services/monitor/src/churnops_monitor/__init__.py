"""ChurnOps monitor service."""
