"""CLI commands (filled in by the worker domain)."""
