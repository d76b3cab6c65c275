"""Delivery across processes through a real Redis, and recovery from a Redis restart."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from tests import services
from tests.events import sample
from tests.events.sample import Ping, Pong, Recorder

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.redis


def _wait(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def _peer(settings: Settings, redis_url: str, tmp: Path) -> Iterator[dict[str, Path]]:
    """Another panel process: same database, same Redis, the file recorder loaded."""
    files = {
        "out": tmp / "peer-events.jsonl",
        "ready": tmp / "peer-ready",
        "stop": tmp / "peer-stop",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAKWAYA_")}
    env.update(
        GAKWAYA_DATA_DIR=str(tmp / "peer-data"),
        GAKWAYA_DATABASE_URL=settings.database_url,
        GAKWAYA_SECRET_KEY=settings.secret_key,
        GAKWAYA_REDIS_URL=redis_url,
        GAKWAYA_PLUGIN_MODULES="tests.events.sample,tests.events.filerecorder",
        EVENTS_TEST_OUT=str(files["out"]),
        EVENTS_TEST_READY=str(files["ready"]),
        EVENTS_TEST_STOP=str(files["stop"]),
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.events.peer"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not files["ready"].exists():
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"peer exited with {proc.returncode}:\n{output}")
            if time.monotonic() > deadline:
                raise AssertionError("peer did not become ready in 60s")
            time.sleep(0.05)
        yield files
    finally:
        files["stop"].write_text("stop")
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _peer_received(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_events_cross_processes(
    recorder: Recorder, settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    local = Kernel.create(
        msgspec.structs.replace(settings, redis_url=redis_url),
        extra_plugins=[("test.sample", sample), ("test.recorder", recorder)],
    )
    try:
        local.events.start()
        assert local.events.relay is not None
        assert local.events.relay.subscribed.wait(20)
        with _peer(settings, redis_url, tmp_path) as files:
            ping = Ping(org_id=5, note="over there", reply=True)
            ping_id = local.events.publish(ping)
            # The other process received the stored event, typed, with the same id.
            _wait(
                lambda: any(r["id"] == ping_id for r in _peer_received(files["out"])),
                what="the peer to receive the ping",
            )
            got = [r for r in _peer_received(files["out"]) if r["id"] == ping_id]
            assert len(got) == 1
            assert got[0]["event"] == {
                "type": "test.ping",
                "org_id": 5,
                "note": "over there",
                "reply": True,
            }
            # Its answer came back through the relay of this process.
            received = recorder.wait_for(lambda rs: any(isinstance(e, Pong) for e, _ in rs))
            pongs = [(e, i) for e, i in received if isinstance(e, Pong)]
            assert len(pongs) == 1 and pongs[0][0] == Pong(org_id=5, note="over there")
            assert pongs[0][1] > ping_id
            # Our own ping was delivered here once: at publish, not again from Redis.
            time.sleep(0.3)
            assert [i for e, i in recorder.received if isinstance(e, Ping)] == [ping_id]
            # The peer's own pong reached its subscribers once as well (the peer announces
            # it on Redis before it delivers it locally: wait for that delivery).
            _wait(
                lambda: any(
                    r["event"]["type"] == "test.pong" for r in _peer_received(files["out"])
                ),
                what="the peer to deliver its own pong",
            )
            time.sleep(0.3)  # and not a second time
            peer_pongs = [
                r for r in _peer_received(files["out"]) if r["event"]["type"] == "test.pong"
            ]
            assert [r["id"] for r in peer_pongs] == [pongs[0][1]]
    finally:
        local.close()


@contextlib.contextmanager
def _redis_on(port: int, workdir: Path) -> Iterator[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        services.wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_relay_reconnects_after_redis_restarts(settings: Settings) -> None:
    """Kernel ``a`` listens; kernel ``b`` publishes as another process would. Redis goes
    away and comes back on the same port: ``a`` resubscribes, receives what ``b``
    stored meanwhile (from the table) and what it publishes afterwards (live)."""
    port = services.free_port()
    workdir = Path(tempfile.mkdtemp(prefix="gakwaya-redis-restart-"))
    url = f"redis://127.0.0.1:{port}/0"
    s = msgspec.structs.replace(settings, redis_url=url)
    rec_a = Recorder()
    a = Kernel.create(s, extra_plugins=[("test.sample", sample), ("test.recorder", rec_a)])
    b = Kernel.create(s, extra_plugins=[("test.sample", sample)])
    b.process_id = "another-host:4242"  # what a second process would be called
    try:
        with _redis_on(port, workdir):
            a.events.start()
            relay = a.events.relay
            assert relay is not None and relay.subscribed.wait(20)
            first = b.events.publish(Ping(org_id=1, note="first"))
            rec_a.wait_for(lambda rs: first in [i for _, i in rs])
        # Redis is down.
        _wait(lambda: not relay.subscribed.is_set(), what="the relay to notice")
        while_down = b.events.publish(Ping(org_id=1, note="while down"))  # stored, not announced
        assert while_down > first
        with _redis_on(port, workdir):
            assert relay.subscribed.wait(30), "relay did not resubscribe"
            rec_a.wait_for(lambda rs: while_down in [i for _, i in rs])
            after = b.events.publish(Ping(org_id=1, note="after"))
            rec_a.wait_for(lambda rs: after in [i for _, i in rs])
            time.sleep(0.3)
        assert rec_a.ids() == [first, while_down, after]
        assert [e.note for e, _ in rec_a.received] == ["first", "while down", "after"]  # type: ignore[attr-defined]
    finally:
        a.close()
        b.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_stop_ends_the_relay(settings: Settings, redis_url: str) -> None:
    k = Kernel.create(
        msgspec.structs.replace(settings, redis_url=redis_url),
        extra_plugins=[("test.sample", sample)],
    )
    try:
        k.start_background()
        relay = k.events.relay
        assert relay is not None and relay.subscribed.wait(20)
        k.stop_background()
        assert not relay.running and not relay.subscribed.is_set()
        # And it can start again.
        k.events.start()
        assert relay.subscribed.wait(20)
    finally:
        k.close()
    assert not relay.running


def test_events_from_a_forked_child_reach_the_parent(
    settings: Settings, redis_url: str, recorder: Recorder
) -> None:
    """A job run in a forked child (rq's work horse) shares the parent's kernel object;
    its events must not look like the parent's own to the parent's relay."""
    k = Kernel.create(
        msgspec.structs.replace(settings, redis_url=redis_url),
        extra_plugins=[("test.sample", sample), ("test.recorder", recorder)],
    )
    try:
        k.events.start()
        assert k.events.relay is not None and k.events.relay.subscribed.wait(20)
        pid = os.fork()
        if pid == 0:  # the child: publish and leave without running any cleanup
            code = 1
            try:
                k.db.engine.dispose(close=False)  # never share the parent's connections
                k.events.publish(Ping(org_id=1, note="from the child"))
                code = 0
            finally:
                os._exit(code)
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise AssertionError("the forked child did not finish")
            time.sleep(0.05)
        assert os.waitstatus_to_exitcode(status) == 0
        received = recorder.wait_for(
            lambda rs: any(isinstance(e, Ping) and e.note == "from the child" for e, _ in rs)
        )
        assert len(received) == 1
    finally:
        k.close()
