"""ChurnOps scorer service."""
