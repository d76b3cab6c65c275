"""Names the pipeline gives things outside the database: container labels, image tags.

Derived from database ids and the installation id only, never from a user's input,
so nothing a user types reaches a container name, a network name or an image tag.
The installation id (:attr:`gakwaya.kernel.Kernel.installation_id`) keeps two
installations sharing one Docker engine apart: each sees and removes only its own.
"""

from __future__ import annotations

#: Label every container and network we create carries; the reconciler removes only
#: objects with it (images it builds are known by their names: :func:`image_prefix`).
MANAGED_LABEL = "gakwaya.managed"
MANAGED_VALUE = "true"
APP_LABEL = "gakwaya.app"
INSTALLATION_LABEL = "gakwaya.installation"
ORG_LABEL = "gakwaya.org"
RELEASE_LABEL = "gakwaya.release"
DEPLOYMENT_LABEL = "gakwaya.deployment"
#: Image repository of built releases (local to the engine; no registry).
IMAGE_REPOSITORY = "gakwaya"


def app_key(installation: str, app_id: int) -> str:
    return f"{installation}-a{app_id}"


def org_key(installation: str, org_id: int) -> str:
    return f"{installation}-o{org_id}"


def release_key(release_id: int) -> str:
    return f"r{release_id}"


def deployment_key(deployment_id: int) -> str:
    return f"d{deployment_id}"


def image_tag(installation: str, app_id: int, deployment_id: int) -> str:
    return f"{IMAGE_REPOSITORY}/{app_key(installation, app_id)}:{deployment_key(deployment_id)}"


def image_prefix(installation: str, app_id: int | None = None) -> str:
    """How every tag :func:`image_tag` makes for this installation (for one app)
    begins: built images are found by name, not by labels, because a label on an
    image costs a build step (a container and a commit) on every build."""
    if app_id is None:
        return f"{IMAGE_REPOSITORY}/{installation}-a"
    return f"{IMAGE_REPOSITORY}/{app_key(installation, app_id)}:"


def parse_image_tag(tag: str, installation: str) -> tuple[int, int] | None:
    """``(app id, deployment id)`` of a tag :func:`image_tag` made for this
    installation, or None for any other tag."""
    rest = tag.removeprefix(image_prefix(installation))
    if rest == tag:
        return None
    app, sep, deployment = rest.partition(":d")
    if not (sep and app.isascii() and app.isdigit() and deployment.isascii()):
        return None
    if not deployment.isdigit():
        return None
    return int(app), int(deployment)


def parse_key(value: str, prefix: str) -> int | None:
    """The id in a key made above (``a12``, ``0f3a9c1e-a12`` → 12), or None."""
    value = value.rpartition("-")[2]
    if len(value) > 1 and value[0] == prefix and value[1:].isdigit():
        return int(value[1:])
    return None
