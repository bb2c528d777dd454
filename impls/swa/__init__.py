"""swa family."""
