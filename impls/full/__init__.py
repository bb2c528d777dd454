"""full family."""
