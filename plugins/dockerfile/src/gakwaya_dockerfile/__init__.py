"""Dockerfile builder: builds images with the local Docker engine, layer cache reused."""
