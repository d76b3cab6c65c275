"""Gakwaya kernel: identity, tenancy and RBAC, audit, events and jobs."""

__version__ = "0.1.0"
