"""Enqueueing, cancelling and running jobs (interface; the jobs package completes it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel


class JobQueue:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None
