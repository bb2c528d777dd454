"""linear family."""
