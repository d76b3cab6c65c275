"""Loading plugins and calling their hooks."""
