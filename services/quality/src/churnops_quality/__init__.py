"""ChurnOps quality service."""
