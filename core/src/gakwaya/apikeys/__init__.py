"""API keys: prefixed, checksummed, shown once, stored hashed, scoped to one organization."""
