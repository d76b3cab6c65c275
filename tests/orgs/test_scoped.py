"""The scoped data-access layer: another organization's row is a NotFound naming only
what was asked for."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gakwaya.db.models import ApiKey, Membership
from gakwaya.errors import NotFound
from gakwaya.orgs.scoped import find_in_org, get_in_org, in_org


def test_get_in_org_finds_own_rows_only(kernel, world):
    with kernel.db.session() as db:
        key_a = db.scalars(select(ApiKey).where(ApiKey.org_id == world.a.org.id)).first()
        assert get_in_org(db, ApiKey, key_a.id, world.a.org.id, what="API key") is key_a
        with pytest.raises(NotFound) as info:
            get_in_org(db, ApiKey, key_a.id, world.b.org.id, what="API key")
        assert info.value.detail == f"API key {key_a.id} not found in this organization"
        assert find_in_org(db, ApiKey, key_a.id, world.b.org.id) is None


def test_lookup_by_another_column(kernel, world):
    viewer_b = world.b.users["viewer"]
    with kernel.db.session() as db:
        m = get_in_org(
            db, Membership, viewer_b.id, world.b.org.id, what="member", column=Membership.user_id
        )
        assert m.user_id == viewer_b.id
        with pytest.raises(NotFound) as info:
            get_in_org(
                db,
                Membership,
                viewer_b.id,
                world.a.org.id,
                what="member",
                column=Membership.user_id,
            )
        assert "globex" not in info.value.detail and "viewer@" not in info.value.detail


def test_in_org_lists_one_org(kernel, world):
    with kernel.db.session() as db:
        rows = db.scalars(in_org(Membership, world.a.org.id)).all()
    assert {m.org_id for m in rows} == {world.a.org.id} and len(rows) == 4
