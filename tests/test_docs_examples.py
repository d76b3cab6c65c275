"""The examples of docs/plugins/hooks.md, run as the plugin module they add up to."""

from __future__ import annotations

import re
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from litestar.testing import TestClient

from gakwaya.app import create_app
from gakwaya.kernel import Kernel
from gakwaya.orgs.events import MemberAdded
from gakwaya.settings import Settings
from gakwaya_sdk.ui import UiContext
from tests.conftest import make_key, make_org, make_user

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins" / "hooks.md"


def example_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 6
    module = types.ModuleType("hooks_md_example")
    # Litestar resolves a handler's annotations through its module in sys.modules.
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile("\n".join(blocks), str(DOC), "exec"), module.__dict__)  # noqa: S102
    return module


def test_hook_reference_examples_work(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = example_module(monkeypatch)
    # What the plugin's packaged gakwaya-plugin.toml would say.
    module.MANIFEST = {  # type: ignore[attr-defined]
        "name": "hooks-md",
        "version": "1.0",
        "core_api": ">=0.1,<0.2",
        "provides": ["notifier:log"],
    }
    received: list[Any] = []
    module.on_event = _recording(module.on_event, received)  # type: ignore[attr-defined]
    settings = Settings(
        data_dir=str(tmp_path / "data"),
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
    )
    kernel = Kernel.create(settings, extra_plugins=[("hooks-md", module)])
    try:
        assert "hello.greet" in kernel.permissions
        owner = make_user(kernel, "owner@example.com")
        org = make_org(kernel, "acme", {owner: "viewer"})
        key = make_key(kernel, owner, org, ["read"])
        with TestClient(create_app(kernel)) as client:
            r = client.get("/api/v1/orgs/acme/hello", headers=key)
            assert r.status_code == 200, r.text
            assert r.json() == {"hello": "acme", "your_role": "viewer"}
            assert client.get("/api/v1/orgs/nope/hello", headers=key).status_code == 404

            event_id = kernel.events.publish(module.Greeted(org_id=org.id, name="ada"))
            assert any(e == event_id for _, e in received)

            notifier = kernel.plugins.provider("notifier:log")
            assert isinstance(notifier, module.LogNotifier)
            assert kernel.plugins.providers("notifier") == {"notifier:log": notifier}
            kernel.events.publish(MemberAdded(org_id=org.id, user_id=1, role="viewer", via="cli"))
            assert notifier.sent == ["new member"]
            assert kernel.plugins.statuses["hooks-md"].status == "active"

            # What the dashboard reads: one item of each kind, none refused.
            panel = kernel.plugins.panel
            assert panel is not None
            contributed = {
                kind: [(c.plugin, c.item) for c in panel.contributions(kind)]
                for kind in ("pages", "nav", "actions", "cards")
            }
            assert [i.path for p, i in contributed["pages"] if p == "hooks-md"] == [
                "/p/hooks-md/orgs/{org}"
            ]
            assert [i.label for p, i in contributed["nav"] if p == "hooks-md"] == ["Greeting"]
            assert [i.target for p, i in contributed["actions"] if p == "hooks-md"] == ["org"]
            cards = [i for p, i in contributed["cards"] if p == "hooks-md"]
            assert cards[0].content(UiContext(request=None, api=None, org="acme", app_id=3)) == (
                "app 3 of acme"
            )
            status = kernel.plugins.statuses["hooks-md"]
            assert status.status == "active", status.reason

            job = kernel.jobs.enqueue("hello.greet", org_id=org.id, arguments={"name": "ada"})
            deadline = time.monotonic() + 30
            while kernel.jobs.get(job.id).state not in ("succeeded", "failed"):
                assert time.monotonic() < deadline, "the example job did not finish"
                time.sleep(0.05)
            assert kernel.jobs.get(job.id).result == "hello ada"
    finally:
        kernel.close()


def _recording(original: Any, sink: list[Any]) -> Any:
    from gakwaya_sdk import hookimpl

    @hookimpl
    def on_event(event: Any, event_id: int, panel: Any) -> None:
        sink.append((event, event_id))
        original(event, event_id, panel)

    return on_event
