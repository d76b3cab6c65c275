"""Long-lived background work a plugin runs in the serving panel (``register_services``).

A port forwarder, a scheduler, a metrics sampler: anything that must run while the
panel serves, beside requests. The kernel starts each service once, in the process
of ``gakwaya serve``, and stops it at shutdown.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Service(Protocol):
    #: Shown in logs and in the plugin's status when it fails.
    name: str

    def start(self) -> None:
        """Begin the work and return at once (start a daemon thread for a loop)."""

    def stop(self) -> None:
        """End the work; return within a few seconds."""
