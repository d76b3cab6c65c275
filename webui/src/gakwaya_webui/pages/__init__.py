"""One module per area of the dashboard, each exposing ``ROUTES`` (see plugin.py)."""
