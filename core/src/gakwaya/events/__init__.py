"""Typed domain events: stored, delivered to subscribers, streamed."""
