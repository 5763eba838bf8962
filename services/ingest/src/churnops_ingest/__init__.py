"""ChurnOps ingest service: warehouse queries and HTTP APIs into the landing bucket."""
