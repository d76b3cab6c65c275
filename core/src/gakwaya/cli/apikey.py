"""CLI commands (filled in by the apikey domain)."""
