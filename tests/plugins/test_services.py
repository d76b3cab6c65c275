"""register_services: plugins' long-lived work, run by the serving process only.

Real kernels and the real app lifecycle (a TestClient runs Litestar's startup and
shutdown); the plugins are small test modules whose services record what happened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from litestar.testing import TestClient

from gakwaya.app import create_app
from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from gakwaya_sdk import hookimpl
from gakwaya_sdk.jobs import JobType
from gakwaya_sdk.services import Service
from tests.test_docs_examples import example_module


def manifest(name: str) -> dict[str, Any]:
    return {"name": name, "version": "1.0", "core_api": ">=0.1,<0.2"}


class Recorder:
    """A service that records its lifecycle and runs a thread while started."""

    def __init__(self, name: str, journal: list[str], *, fail: str = "") -> None:
        self.name = name
        self.journal = journal
        self.fail = fail
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: Set by start(): did a job enqueued from start() run (the runner was up)?
        self.job_ran = False
        self.panel: Any = None

    def start(self) -> None:
        self.journal.append(f"start {self.name}")
        if self.fail == "start":
            raise RuntimeError(f"{self.name} cannot start")
        if self.panel is not None:
            job_id = self.panel.enqueue("svc.ping")
            self.job_ran = _wait_job(self.panel, job_id)
        self.thread = threading.Thread(target=self._stop.wait, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.journal.append(f"stop {self.name}")
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        if self.fail == "stop":
            raise RuntimeError(f"{self.name} cannot stop")


def _wait_job(panel: Any, job_id: str) -> bool:
    kernel = panel._kernel  # the test looks behind the protocol to read the job's state
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if kernel.jobs.get(job_id).state == "succeeded":
            return True
        time.sleep(0.05)
    return False


def serving(name: str, *services: Any, hook_raises: bool = False) -> object:
    class Plugin:
        MANIFEST = manifest(name)

        @hookimpl
        def register_services(self, panel: Any) -> Sequence[Any]:
            if hook_raises:
                raise RuntimeError("no services today")
            for service in services:
                if isinstance(service, Recorder):
                    service.panel = panel
            return list(services)

        @hookimpl
        def register_jobs(self) -> Sequence[JobType]:
            return [JobType(name="svc.ping", func=lambda ctx: "pong")] if name == "svc-a" else []

    return Plugin()


def test_services_start_after_the_background_and_stop_at_shutdown(settings: Settings) -> None:
    journal: list[str] = []
    service = Recorder("ticker", journal)
    assert isinstance(service, Service)
    kernel = Kernel.create(settings, extra_plugins=[("svc-a", serving("svc-a", service))])
    try:
        assert "register_services" in kernel.plugins.statuses["svc-a"].hooks
        assert journal == []  # loading the plugin starts nothing
        with TestClient(create_app(kernel)) as client:
            assert journal == ["start ticker"]
            # The kernel's job runner was already up when start() ran.
            assert service.job_ran
            assert service.thread is not None and service.thread.is_alive()
            assert client.get("/healthz").status_code == 200
        assert journal == ["start ticker", "stop ticker"]
        assert not service.thread.is_alive()
        assert kernel.plugins.statuses["svc-a"].status == "active"
    finally:
        kernel.close()
    assert journal == ["start ticker", "stop ticker"]  # close() does not stop it twice


def test_a_failing_plugin_does_not_stop_the_others(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    journal: list[str] = []
    good = Recorder("good", journal)
    later = Recorder("later", journal)
    plugins: list[tuple[str, object]] = [
        ("svc-a", serving("svc-a", good)),
        ("svc-hook", serving("svc-hook", Recorder("never", journal), hook_raises=True)),
        ("svc-junk", serving("svc-junk", object(), Recorder("kept", journal))),
        ("svc-start", serving("svc-start", Recorder("broken", journal, fail="start"))),
        ("svc-stop", serving("svc-stop", Recorder("stubborn", journal, fail="stop"))),
        ("svc-z", serving("svc-z", later)),
    ]
    kernel = Kernel.create(settings, extra_plugins=plugins)
    caplog.set_level(logging.INFO, logger="gakwaya.plugins")
    try:
        with TestClient(create_app(kernel)) as client:
            assert client.get("/healthz").status_code == 200
            assert journal == [
                "start good",
                "start kept",
                "start broken",
                "start stubborn",
                "start later",
            ]
            statuses = kernel.plugins.statuses
            assert statuses["svc-a"].status == "active"
            assert statuses["svc-z"].status == "active"
            assert statuses["svc-hook"].status == "degraded"
            assert "hook register_services raised RuntimeError('no services today')" in (
                statuses["svc-hook"].reason
            )
            assert statuses["svc-junk"].status == "degraded"
            assert "is not a Service" in statuses["svc-junk"].reason
            assert statuses["svc-start"].status == "degraded"
            assert "service 'broken' failed to start: RuntimeError('broken cannot start')" in (
                statuses["svc-start"].reason
            )
            assert good.thread is not None and good.thread.is_alive()
            assert later.thread is not None and later.thread.is_alive()
        # Stopped last-started first; the one that never started is not stopped, and
        # one that fails to stop does not keep the others running.
        assert journal[5:] == ["stop later", "stop stubborn", "stop kept", "stop good"]
        assert not good.thread.is_alive() and not later.thread.is_alive()
        assert kernel.plugins.statuses["svc-stop"].status == "degraded"
        assert "service 'stubborn' failed to stop" in kernel.plugins.statuses["svc-stop"].reason
    finally:
        kernel.close()
    logged = [r.getMessage() for r in caplog.records]
    assert "plugin svc-start: service broken failed to start" in logged
    assert "plugin svc-stop: service stubborn failed to stop" in logged
    assert "plugin svc-a: service good started" in logged
    assert "plugin svc-a: service good stopped" in logged


def test_a_non_list_result_degrades_its_plugin(settings: Settings) -> None:
    class Plugin:
        MANIFEST = manifest("svc-int")

        @hookimpl
        def register_services(self) -> int:
            return 42

    journal: list[str] = []
    kernel = Kernel.create(
        settings,
        extra_plugins=[("svc-int", Plugin()), ("svc-a", serving("svc-a", Recorder("ok", journal)))],
    )
    try:
        with TestClient(create_app(kernel)):
            assert journal == ["start ok"]
        status = kernel.plugins.statuses["svc-int"]
        assert status.status == "degraded"
        assert "register_services returned 42, not a list" in status.reason
    finally:
        kernel.close()


def test_workers_and_commands_do_not_run_services(settings: Settings) -> None:
    journal: list[str] = []
    service = Recorder("ticker", journal)
    kernel = Kernel.create(settings, extra_plugins=[("svc-a", serving("svc-a", service))])
    try:
        # What `gakwaya worker` starts (cli/worker.py): the kernel's background only.
        kernel.start_background()
        kernel.stop_background()
        # An app whose caller drives the background itself (tests, tools).
        with TestClient(create_app(kernel, background=False)) as client:
            assert client.get("/healthz").status_code == 200
        assert journal == []
    finally:
        kernel.close()
    assert journal == []


def test_the_hook_reference_example_runs_while_serving(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = example_module(monkeypatch)
    module.MANIFEST = {  # type: ignore[attr-defined]
        "name": "hooks-md",
        "version": "1.0",
        "core_api": ">=0.1,<0.2",
        "provides": ["notifier:log"],
    }
    kernel = Kernel.create(settings, extra_plugins=[("hooks-md", module)])
    try:
        heartbeat = module.heartbeat
        assert heartbeat.thread is None
        with TestClient(create_app(kernel)):
            assert heartbeat.thread is not None and heartbeat.thread.is_alive()
            assert heartbeat.data_dir == kernel.settings.data_path / "plugins" / "data" / "hooks-md"
        assert not heartbeat.thread.is_alive()
        assert kernel.plugins.statuses["hooks-md"].status == "active"
    finally:
        kernel.close()
