"""``gakwaya plugin new NAME``: start a plugin project (``gakwaya plugins`` manages
installed ones)."""

from __future__ import annotations

from pathlib import Path

import click

from gakwaya.cli.common import fail, main


@main.group("plugin")
def plugin_group() -> None:
    """Write Gakwaya plugins: start a new plugin project."""


@plugin_group.command("new")
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Existing directory to create the project in (as DIRECTORY/NAME).",
)
def new(name: str, directory: Path) -> None:
    """Create the plugin project NAME: pyproject with entry point and manifest, a
    permission, a route, its tests and a README; the tests pass as generated.

    NAME is lower-case letters, digits and '-'; the plugin and its distribution are
    both named gakwaya-NAME (one name, which operators install and configure it by),
    the package is gakwaya_NAME (with '_' for '-')."""
    from gakwaya.scaffold import Names, ScaffoldError, create

    try:
        names = Names.of(name)
    except ScaffoldError as exc:
        fail(str(exc), code=2)
    try:
        target = create(name, directory)
    except ScaffoldError as exc:
        fail(str(exc))
    click.echo(f"created {target} (plugin {names.dist}, package {names.package})")
    click.echo("next:")
    click.echo(f"  cd {target}")
    click.echo("  uv run pytest      # the generated tests, on a real panel")
    click.echo("  uv build --wheel   # the wheel to publish")
