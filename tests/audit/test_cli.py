"""``gakwaya audit list``."""

from __future__ import annotations

import json

from gakwaya.kernel import Kernel
from tests.audit.helpers import cli
from tests.conftest import World


def _seed(kernel: Kernel, world: World) -> None:
    for action, outcome in [
        ("members_update", "success"),
        ("members_remove", "denied"),
        ("apps_create", "failure"),
    ]:
        kernel.audit.record(
            action=action,
            outcome=outcome,
            actor_type="user",
            actor_id="1",
            actor_label="owner@acme.example.com",
            org_id=world.a.org.id,
            target_type="member",
            target_id="5",
            ip="203.0.113.9",
        )
    kernel.audit.record(
        action="members_update", outcome="success", actor_type="user", org_id=world.b.org.id
    )


def test_list_json_and_filters(kernel: Kernel, world: World) -> None:
    _seed(kernel, world)
    out = cli(kernel, "audit", "list", "--org", "acme", "--json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["action"] for r in rows] == ["apps_create", "members_remove", "members_update"]
    assert rows[0]["ip"] == "203.0.113.9" and rows[0]["actor_label"] == "owner@acme.example.com"

    out = cli(kernel, "audit", "list", "--org", "acme", "--outcome", "denied", "--json")
    assert [r["action"] for r in json.loads(out.output)] == ["members_remove"]
    out = cli(
        kernel, "audit", "list", "--org", "acme", "--action", "members_*", "--limit", "1", "--json"
    )
    assert [r["action"] for r in json.loads(out.output)] == ["members_remove"]
    out = cli(kernel, "audit", "list", "--org", "acme", "--since", "2999-01-01", "--json")
    assert json.loads(out.output) == []

    out = cli(kernel, "audit", "list", "--org", "acme")
    assert out.exit_code == 0
    lines = out.output.strip().splitlines()
    assert len(lines) == 3
    assert "apps_create" in lines[0] and "member:5" in lines[0] and "203.0.113.9" in lines[0]


def test_list_errors(kernel: Kernel, world: World) -> None:
    out = cli(kernel, "audit", "list", "--org", "nope")
    assert out.exit_code == 1 and "organization 'nope' not found" in out.output
    out = cli(kernel, "audit", "list", "--org", "acme", "--since", "last week")
    assert out.exit_code == 1 and "--since: an ISO 8601" in out.output
    out = cli(kernel, "audit", "list", "--org", "acme", "--outcome", "meh")
    assert out.exit_code == 2  # click refuses the choice
    out = cli(kernel, "audit", "list")
    assert out.exit_code == 2 and "--org" in out.output
