"""Built images are known by their name (``gakwaya/<installation>-a<app>:d<deployment>``),
not by labels: the reconciler and an app's teardown find exactly this installation's
images that way, on a real Docker engine shared with other installations."""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from gakwaya.db.base import utcnow
from gakwaya.db.models import App, Deployment
from gakwaya.deploy import keys
from gakwaya.deploy.lifecycle import teardown
from gakwaya.deploy.reconciler import reconcile
from gakwaya.kernel import Kernel
from tests.deploy.pipeline_helpers import clean_engine, make_app

pytestmark = pytest.mark.usefixtures("gakwaya_base_image")

#: Another installation sharing the engine (the same app and deployment ids).
OTHER = "0ther" + uuid.uuid4().hex[:3]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"reconcile_interval": 3600}


@pytest.fixture
def engine(kernel: Kernel) -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    clean_engine(kernel.installation_id)
    clean_engine(OTHER)
    client.close()


def _image(client: docker.DockerClient, base: str, *tags: str) -> str:
    """A distinct small image (its own bytes, so removing it touches nothing else)."""
    dockerfile = f"FROM {base}\nLABEL gakwaya-test.unique={uuid.uuid4().hex}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buffer.seek(0)
    image, _ = client.images.build(fileobj=buffer, custom_context=True, rm=True, pull=False)
    for tag in tags:
        repository, _, name = tag.rpartition(":")
        image.tag(repository, name)
    return str(image.id)


def _tags(client: docker.DockerClient, image_id: str) -> set[str]:
    """The image's tags, or an empty set when the image is gone."""
    try:
        return set(client.images.get(image_id).tags)
    except docker.errors.ImageNotFound:
        return set()


def _queued_deployment(kernel: Kernel, app_id: int, number: int) -> int:
    """A deployment still waiting for its job (so the reconciler leaves it be)."""
    with kernel.db.transaction() as db:
        app = db.get(App, app_id)
        assert app is not None
        row = Deployment(
            org_id=app.org_id, app_id=app_id, number=number, state="queued", created_at=utcnow()
        )
        db.add(row)
        db.flush()
        return int(row.id)


def test_the_reconciler_removes_exactly_its_dead_images_found_by_name(
    kernel: Kernel, world: Any, engine: docker.DockerClient, gakwaya_base_image: str
) -> None:
    inst = kernel.installation_id
    app_id = make_app(kernel, world.a.org, "named")
    active = _queued_deployment(kernel, app_id, 1)
    active_too = _queued_deployment(kernel, app_id, 2)
    failed = active + 1000  # no such deployment: a failed or forgotten one
    gone_app = app_id + 1000  # an app deleted since

    def tag(app: int, deployment: int, installation: str = inst) -> str:
        return keys.image_tag(installation, app, deployment)

    of_failed = _image(engine, gakwaya_base_image, tag(app_id, failed))
    of_deleted_app = _image(engine, gakwaya_base_image, tag(gone_app, failed))
    building = _image(engine, gakwaya_base_image, tag(app_id, active))
    # The same bytes built by a failed and by a running deployment, and by a failed one
    # of ours and another installation's: only our dead names go.
    shared = _image(engine, gakwaya_base_image, tag(app_id, failed + 1), tag(app_id, active_too))
    with_other = _image(
        engine, gakwaya_base_image, tag(app_id, failed + 2), tag(app_id, failed, OTHER)
    )
    # Under our prefix but not a name we make; and another installation's images.
    odd_name = f"{keys.image_prefix(inst)}{app_id}:mine"
    foreign_name = _image(engine, gakwaya_base_image, odd_name)
    other = _image(engine, gakwaya_base_image, tag(app_id, failed, OTHER) + "x")
    other_deleted = _image(engine, gakwaya_base_image, tag(gone_app, failed, OTHER))

    report = reconcile(kernel)

    assert _tags(engine, of_failed) == set(), report
    assert _tags(engine, of_deleted_app) == set(), report
    assert _tags(engine, building) == {tag(app_id, active)}
    assert _tags(engine, shared) == {tag(app_id, active_too)}
    assert _tags(engine, with_other) == {tag(app_id, failed, OTHER)}
    assert _tags(engine, foreign_name) == {odd_name}
    assert _tags(engine, other) == {tag(app_id, failed, OTHER) + "x"}
    assert _tags(engine, other_deleted) == {tag(gone_app, failed, OTHER)}
    removed = sorted(a for a in report.actions if a.startswith("image "))
    assert len(removed) == 4, report.actions
    assert not report.errors, report.errors


def test_teardown_removes_the_apps_images_and_no_one_elses(
    kernel: Kernel, world: Any, engine: docker.DockerClient, gakwaya_base_image: str
) -> None:
    inst = kernel.installation_id
    # Ids of apps that no longer exist (teardown runs after the row is deleted); 12 and
    # 120 share a prefix of digits, which must not make them one app.
    mine = _image(engine, gakwaya_base_image, keys.image_tag(inst, 12, 1))
    mine_again = _image(engine, gakwaya_base_image, keys.image_tag(inst, 12, 2))
    neighbour = _image(engine, gakwaya_base_image, keys.image_tag(inst, 120, 3))
    # The same bytes are app 120's image too.
    shared = _image(
        engine, gakwaya_base_image, keys.image_tag(inst, 12, 4), keys.image_tag(inst, 120, 4)
    )
    other = _image(engine, gakwaya_base_image, keys.image_tag(OTHER, 12, 1))
    lines: list[str] = []
    result = teardown(kernel, app_id=12, log=lines.append)
    assert result["images"] == 3, lines
    assert _tags(engine, mine) == set() and _tags(engine, mine_again) == set()
    assert _tags(engine, neighbour) == {keys.image_tag(inst, 120, 3)}
    assert _tags(engine, shared) == {keys.image_tag(inst, 120, 4)}
    assert _tags(engine, other) == {keys.image_tag(OTHER, 12, 1)}


def test_image_names_parse_back_only_for_their_installation() -> None:
    tag = keys.image_tag("abcd1234", 12, 7)
    assert tag == "gakwaya/abcd1234-a12:d7"
    assert tag.startswith(keys.image_prefix("abcd1234"))
    assert tag.startswith(keys.image_prefix("abcd1234", 12))
    assert not tag.startswith(keys.image_prefix("abcd1234", 1))
    assert keys.parse_image_tag(tag, "abcd1234") == (12, 7)
    for other in ("abcd123", "bcd1234", "abcd12345"):
        assert keys.parse_image_tag(tag, other) is None
    for odd in (
        "gakwaya/abcd1234-a12:latest",
        "gakwaya/abcd1234-a12:d",
        "gakwaya/abcd1234-a:d7",
        "gakwaya/abcd1234-a1x:d7",
        "gakwaya/abcd1234-a12:d7x",
        "gakwaya/abcd1234-a١٢:d7",  # noqa: RUF001 - non-ASCII digits are not ours
        "other/abcd1234-a12:d7",
    ):
        assert keys.parse_image_tag(odd, "abcd1234") is None, odd
