"""Caddy proxy: serves each app's domains over HTTPS with ACME certificates, driven
through Caddy's admin API."""
