"""Hook implementations of gakwaya-dockerfile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gakwaya_dockerfile.builder import CAPABILITY, PLUGIN, DockerfileBuilder
from gakwaya_sdk import hookimpl
from gakwaya_sdk.context import Panel
from gakwaya_sdk.providers import SourceTree
from gakwaya_sdk.sources import RuleError, confine


@hookimpl
def register_providers(panel: Panel | None) -> Sequence[Any]:
    def settings(org_id: int | None) -> Mapping[str, Any]:
        # Read at each build, so an operator's change applies to the next one.
        return panel.settings(PLUGIN, org_id=org_id) if panel is not None else {}

    return [DockerfileBuilder(settings=settings)]


@hookimpl
def builder_for_source(source: SourceTree) -> str | None:
    """The Dockerfile builder takes any source whose configured Dockerfile exists
    inside the checkout; a path leading out of it is not ours to build."""
    try:
        dockerfile = confine(source.context_dir, source.dockerfile)
    except (RuleError, OSError):
        return None
    return CAPABILITY if dockerfile.is_file() else None
