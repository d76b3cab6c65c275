"""Generic git source: shallow clones over HTTPS (token) and SSH (deploy key)."""
