"""CLI commands (filled in by the audit domain)."""
