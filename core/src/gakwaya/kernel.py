"""The kernel: one object per process holding settings, storage, plugins and services.

The API app, the CLI and ``gakwaya worker`` each build one with
:meth:`Kernel.create` and share every service through it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from functools import cached_property
from typing import TYPE_CHECKING, Any

from gakwaya.audit.log import AuditLog
from gakwaya.auth.catalogue import PermissionCatalogue
from gakwaya.db import Database
from gakwaya.plugins.host import PluginHost, load_blocklist
from gakwaya.plugins.panel import KernelPanel
from gakwaya.plugins.state import read_state
from gakwaya.security.crypto import SecretBox, load_or_create_key
from gakwaya.settings import Settings, load_settings

if TYPE_CHECKING:
    from redis import Redis

    from gakwaya.db.migrate import BranchState
    from gakwaya.events.bus import EventBus
    from gakwaya.jobs.queue import JobQueue
    from gakwaya_sdk.services import Service


def installation_id(key: str) -> str:
    """The installation's id from its secret key: stable across restarts, and revealing
    nothing about the key."""
    return hashlib.sha256(b"gakwaya-installation\0" + key.encode()).hexdigest()[:8]


class Kernel:
    def __init__(
        self, settings: Settings, *, extra_plugins: list[tuple[str, object]] | None = None
    ):
        self.settings = settings
        self.process_id = f"{socket.gethostname()}:{os.getpid()}"
        settings.data_path.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.effective_database_url)
        key = load_or_create_key(settings.secret_key, settings.data_path)
        self.box = SecretBox(key)
        #: Tells this installation's containers, networks and images from another's on a
        #: shared Docker engine (two panels, or test runs).
        self.installation_id = installation_id(key)
        self.plugins = PluginHost(
            disabled=settings.disabled_plugins,
            modules=settings.plugin_modules,
            state=read_state(self.db),
            blocklist=load_blocklist(settings.plugin_blocklist)
            if settings.plugin_blocklist
            else (),
            trace=settings.plugin_trace,
        )
        self.plugins.panel = KernelPanel(self)
        self.plugins.load(extra=extra_plugins or [])
        self.permissions = PermissionCatalogue(self.plugins.permissions())
        self.audit = AuditLog(self.db, self.box)
        #: Plugins' services running in this process (``start_services``).
        self._services: list[tuple[str, Service]] = []

    @classmethod
    def create(cls, settings: Settings | None = None, **kwargs: Any) -> Kernel:
        return cls(settings or load_settings(), **kwargs)

    def migrate(self) -> list[BranchState]:
        """Core's migrations, then every active plugin's branch in load order.

        A plugin whose branch is refused (or fails) is marked degraded with the
        reason, since its tables are missing or old; the others migrate."""
        from gakwaya.db.migrate import upgrade

        states = upgrade(self.db.engine, self.plugins.migration_dirs())
        for state in states:
            if state.error:
                self.plugins._mark_degraded(state.name, state.error)
        return states

    @cached_property
    def redis(self) -> Redis | None:
        if not self.settings.redis_url:
            return None
        from redis import Redis

        return Redis.from_url(self.settings.redis_url, health_check_interval=30)

    @cached_property
    def events(self) -> EventBus:
        from gakwaya.events.bus import EventBus

        return EventBus(self)

    @cached_property
    def jobs(self) -> JobQueue:
        from gakwaya.jobs.queue import JobQueue

        return JobQueue(self)

    def start_background(self) -> None:
        """Start what a serving process runs besides requests (event relay, job runner,
        reaper)."""
        self.events.start()
        self.jobs.start()

    def stop_background(self) -> None:
        self.jobs.stop()
        self.events.stop()

    def start_services(self) -> None:
        """Start the plugins' services (``register_services``), after
        :meth:`start_background`. Only a serving process calls it: ``gakwaya worker``
        and CLI commands share :meth:`start_background` but must not run them (a port
        forwarder in a worker would hold the app's ports)."""
        if not self._services:
            self._services = self.plugins.start_services(self.plugins.services())

    def stop_services(self) -> None:
        services, self._services = self._services, []
        self.plugins.stop_services(services)

    def close(self) -> None:
        self.stop_services()
        self.stop_background()
        if self.__dict__.get("redis") is not None:
            self.redis.close()  # type: ignore[union-attr]
        self.db.dispose()


#: Libraries that log every request at INFO: the dashboard calls the API in process
#: through httpx, which would write two lines per page view.
CHATTY_LOGGERS = ("httpx", "httpcore")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
