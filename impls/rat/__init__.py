"""rat family."""
