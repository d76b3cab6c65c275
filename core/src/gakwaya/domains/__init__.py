"""Domains of apps: custom names proven by a TXT record, default names under the
installation's base domain, the routes they add and their certificates' state."""
