"""``builder_for_source``: how the pipeline picks a builder for a checked-out tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gakwaya.deploy.runtime import MissingProvider, builder_for
from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from gakwaya_sdk import hookimpl
from gakwaya_sdk.providers import SourceTree


def _kernel(tmp_path: Path, *extra: tuple[str, object]) -> Kernel:
    settings = Settings(data_dir=str(tmp_path / "data"), secret_key=Fernet.generate_key().decode())
    return Kernel.create(settings, extra_plugins=list(extra))


def test_dockerfile_builder_is_chosen_for_a_dockerfile(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    tree = tmp_path / "src"
    (tree / "deploy").mkdir(parents=True)
    (tree / "deploy" / "web.Dockerfile").write_text("FROM scratch\n")
    found = kernel.plugins.first_result(
        "builder_for_source",
        source=SourceTree(context_dir=str(tree), dockerfile="deploy/web.Dockerfile"),
    )
    assert found == "builder:dockerfile"
    assert builder_for(
        kernel, SourceTree(context_dir=str(tree), dockerfile="deploy/web.Dockerfile")
    )
    # No Dockerfile and no other builder: the pipeline names what is missing.
    with pytest.raises(MissingProvider, match="no Dockerfile found"):
        builder_for(kernel, SourceTree(context_dir=str(tree), dockerfile="Dockerfile"))
    kernel.close()


def test_a_tryfirst_plugin_is_asked_first_and_a_raising_one_is_contained(
    tmp_path: Path,
) -> None:
    class Procfile:
        @hookimpl(tryfirst=True)
        def builder_for_source(self, source: SourceTree) -> str | None:
            found = (Path(source.context_dir) / "Procfile").exists()
            return "builder:dockerfile-lookalike" if found else None

    class Broken:
        @hookimpl(tryfirst=True)
        def builder_for_source(self, source: SourceTree) -> str | None:
            raise RuntimeError("boom")

    kernel = _kernel(tmp_path, ("broken-builder", Broken()), ("procfile-builder", Procfile()))
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "Procfile").write_text("web: python3 app.py\n")
    (tree / "Dockerfile").write_text("FROM scratch\n")
    answer = kernel.plugins.first_result(
        "builder_for_source", source=SourceTree(context_dir=str(tree))
    )
    assert answer == "builder:dockerfile-lookalike"
    status = {s.name: s for s in kernel.plugins.status_list()}
    assert status["broken-builder"].status == "degraded"
    assert "builder_for_source" in status["broken-builder"].reason
    (tree / "Procfile").unlink()
    assert (
        kernel.plugins.first_result("builder_for_source", source=SourceTree(context_dir=str(tree)))
        == "builder:dockerfile"
    )
    kernel.close()
