"""GAKWAYA_REQUEST_THREADS bounds the threads that run request work."""

from __future__ import annotations

import asyncio
import threading
import types
from pathlib import Path
from typing import Any

import anyio.to_thread
from cryptography.fernet import Fernet
from litestar import get
from litestar.testing import TestClient

from gakwaya.app import create_app
from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from gakwaya_sdk import hookimpl


@get("/probe/threads", opt={"public": True})
async def probe() -> dict[str, Any]:
    executor = asyncio.get_running_loop()._default_executor  # type: ignore[attr-defined]
    return {
        "anyio_tokens": anyio.to_thread.current_default_thread_limiter().total_tokens,
        "executor_workers": executor._max_workers if executor else None,
    }


@get("/probe/thread-name", opt={"public": True}, sync_to_thread=True)
def thread_name() -> str:
    return threading.current_thread().name


@hookimpl
def register_routes() -> list[Any]:
    return [probe, thread_name]


def test_request_threads_setting_applies(tmp_path: Path) -> None:
    module = types.SimpleNamespace(register_routes=register_routes)
    settings = Settings(
        data_dir=str(tmp_path / "data"),
        secret_key=Fernet.generate_key().decode(),
        request_threads=3,
    )
    kernel = Kernel.create(settings, extra_plugins=[("probe", module)])
    from gakwaya.db.migrate import upgrade

    upgrade(kernel.db.engine)
    try:
        with TestClient(create_app(kernel)) as client:
            assert client.get("/probe/threads").json() == {
                "anyio_tokens": 3,
                "executor_workers": 3,
            }
            assert client.get("/probe/thread-name").text.startswith("gakwaya-request")
    finally:
        kernel.close()
