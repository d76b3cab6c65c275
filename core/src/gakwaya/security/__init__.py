"""Passwords, random tokens and encryption at rest."""
