"""CLI commands (filled in by the admin domain)."""
