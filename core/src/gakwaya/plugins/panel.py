"""The kernel as plugins see it: an implementation of :class:`gakwaya_sdk.context.Panel`.

Plugins receive this object (the ``panel`` dependency, the ``panel`` hook parameter,
``ctx.panel`` in jobs) and never the :class:`~gakwaya.kernel.Kernel` itself, so what
they may do is exactly the SDK protocol.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gakwaya_sdk.events import Event
from gakwaya_sdk.manifest import CORE_API_VERSION
from gakwaya_sdk.permissions import Permission
from gakwaya_sdk.ui import Contribution, UiKind

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel


class KernelPanel:
    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        #: The plugin set is fixed for a process's life: collect each kind once.
        self._contributions: dict[str, list[Contribution]] = {}
        self._contributions_lock = threading.Lock()

    @property
    def core_api(self) -> str:
        return CORE_API_VERSION

    def settings(self, plugin: str, *, org_id: int | None = None) -> Mapping[str, Any]:
        from gakwaya.plugins.settings import effective_settings

        return effective_settings(self._kernel, plugin, org_id=org_id)

    def publish(self, event: Event) -> int:
        return self._kernel.events.publish(event)

    def enqueue(
        self,
        job_type: str,
        *,
        org_id: int | None = None,
        arguments: Mapping[str, Any] | None = None,
        created_by: str = "",
    ) -> str:
        job = self._kernel.jobs.enqueue(
            job_type,
            org_id=org_id,
            arguments=dict(arguments) if arguments is not None else None,
            created_by=created_by,
        )
        return str(job.id)

    def transaction(self) -> AbstractContextManager[Any]:
        return self._kernel.db.transaction()

    def provider(self, capability: str) -> Any | None:
        return self._kernel.plugins.provider(capability)

    def providers(self, kind: str) -> Mapping[str, Any]:
        return self._kernel.plugins.providers(kind)

    def data_dir(self, plugin: str) -> Path:
        # The name is a plugin's (PEP 503 canonical), never a user's; refuse anything
        # else so no caller can point it outside the data directory.
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,99}", plugin) or ".." in plugin:
            raise ValueError(f"data_dir: {plugin!r} is not a plugin name")
        path = self._kernel.settings.data_path / "plugins" / "data" / plugin
        path.mkdir(parents=True, exist_ok=True)
        return path

    def contributions(self, kind: UiKind) -> Sequence[Contribution]:
        with self._contributions_lock:  # once, even when two requests ask first
            cached = self._contributions.get(kind)
            if cached is None:
                from gakwaya.plugins.ui import collect

                catalogue = self._kernel.permissions
                cached = collect(self._kernel.plugins, kind, catalogue.__contains__)
                self._contributions[kind] = cached
        return list(cached)

    def permission(self, name: str) -> Permission | None:
        catalogue = self._kernel.permissions
        return catalogue.get(name) if name in catalogue else None
