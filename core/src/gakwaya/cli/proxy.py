"""``gakwaya proxy start|stop|status|routes``: the HTTP proxy in front of the apps.

A proxy provider that is also a :class:`gakwaya_sdk.providers.ManagedProxy` (Caddy
with ``managed`` on) is one the panel runs itself: ``start`` launches it detached and
then applies the desired routes at once, so the sites are served without waiting for
the reconciler. Like ``gakwaya reconcile``, these run in the CLI's own process against
the installation's database and settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from gakwaya.cli.common import fail, main
from gakwaya.cli.org import audit, run
from gakwaya_sdk.providers import ManagedProxy, ProviderError, Proxy, Route

PROXY_OPTION = click.option(
    "--proxy",
    "capability",
    default=None,
    metavar="CAPABILITY",
    help="Only this proxy provider (e.g. proxy:caddy); default: every one that applies.",
)


@contextmanager
def provider_errors(what: str) -> Iterator[None]:
    """A provider's refusal becomes one red line and exit status 1."""
    try:
        yield
    except ProviderError as exc:
        fail(f"{what}: {exc}")


def _proxies(kernel: Any, capability: str | None) -> list[Proxy]:
    found: dict[str, Proxy] = dict(kernel.plugins.providers("proxy"))
    if capability is None:
        return list(found.values())
    if capability not in found:
        fail(
            f"--proxy: no active proxy provides {capability!r} "
            f"(active: {', '.join(found) or 'none'})",
            code=2,
        )
    return [found[capability]]


def _managed(kernel: Any, capability: str | None) -> list[Any]:
    managed = [p for p in _proxies(kernel, capability) if isinstance(p, ManagedProxy)]
    if not managed:
        fail(
            "no proxy the panel can run is active"
            + (f" as {capability}" if capability else " (install gakwaya-caddy)")
        )
    return managed


def _describe(route: Route) -> str:
    where = route.domain or f"port {route.port}"
    options = []
    if route.domain:
        options.append("https" if route.tls else "http only")
        if route.tls and not route.https_redirect:
            options.append("http too")
        if route.redirect_from:
            options.append("from " + ",".join(route.redirect_from))
        if route.health_path:
            options.append(f"health {route.health_path}")
        if route.max_body_bytes is not None:
            options.append(f"max body {route.max_body_bytes} B")
        if route.timeout is not None:
            options.append(f"timeout {route.timeout:g}s")
    upstreams = ", ".join(route.upstreams) or "(none)"
    extra = f"  [{'; '.join(options)}]" if options else ""
    return f"{where}\t{route.app}\t-> {upstreams}{extra}"


def _route_json(route: Route) -> dict[str, Any]:
    import msgspec

    decoded: dict[str, Any] = msgspec.to_builtins(route)
    return decoded


@main.group("proxy")
def proxy_group() -> None:
    """The proxy serving the apps' domains (Caddy): run it, inspect it."""


@proxy_group.command("start")
@PROXY_OPTION
def start(capability: str | None) -> None:
    """Start the managed proxy (detached) unless it runs, then apply the desired routes."""
    from gakwaya.deploy.runtime import apply_routes

    def work(kernel: Any) -> None:
        for proxy in _managed(kernel, capability):
            with provider_errors(f"{proxy.capability}: start"):
                proxy.start(log=click.echo)
            audit(
                kernel,
                "proxy start",
                "proxy_start",
                target_type="proxy",
                target_id=proxy.capability,
            )
        try:
            routes = apply_routes(kernel)
        except ProviderError as exc:
            fail(f"the proxy runs, but the routes were not applied: {exc}")
        domains = sum(1 for r in routes if r.domain)
        click.echo(f"routes applied: {len(routes)} ({domains} with a domain)")

    run(work)


@proxy_group.command("stop")
@PROXY_OPTION
def stop(capability: str | None) -> None:
    """Stop the proxy process ``gakwaya proxy start`` started."""

    def work(kernel: Any) -> None:
        for proxy in _managed(kernel, capability):
            with provider_errors(f"{proxy.capability}: stop"):
                proxy.stop()
            audit(
                kernel, "proxy stop", "proxy_stop", target_type="proxy", target_id=proxy.capability
            )
            click.echo(f"{proxy.capability}: stopped")

    run(work)


@proxy_group.command("status")
@PROXY_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object per proxy.")
def status(capability: str | None, as_json: bool) -> None:
    """Each proxy's state (for a managed one: running, admin address, pid, version) and
    the routes it serves."""

    def work(kernel: Any) -> None:
        failed = False
        for proxy in _proxies(kernel, capability):
            state: dict[str, Any] = {}
            routes: list[Route] = []
            error = ""
            try:
                if isinstance(proxy, ManagedProxy):
                    state = dict(proxy.state())
                routes = proxy.routes()
            except ProviderError as exc:
                error, failed = str(exc), True
            if as_json:
                out = {
                    "proxy": proxy.capability,
                    "state": state,
                    "routes": [_route_json(r) for r in routes],
                    "error": error,
                }
                click.echo(json.dumps(out, default=str))
                continue
            click.echo(proxy.capability)
            for key, value in state.items():
                click.echo(f"  {key}: {'-' if value is None else value}")
            click.echo(f"  routes: {len(routes)}")
            for route in routes:
                click.echo(f"    {_describe(route)}")
            if error:
                click.secho(f"  error: {error}", fg="red")
        if failed:
            raise SystemExit(1)

    run(work)


@proxy_group.command("routes")
@PROXY_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON route per line.")
def routes_command(capability: str | None, as_json: bool) -> None:
    """The routes each proxy serves now (what it reports, not the desired set)."""

    def work(kernel: Any) -> None:
        for proxy in _proxies(kernel, capability):
            with provider_errors(f"{proxy.capability}: routes"):
                served = proxy.routes()
            for route in served:
                if as_json:
                    click.echo(json.dumps({"proxy": proxy.capability, **_route_json(route)}))
                else:
                    click.echo(f"{proxy.capability}\t{_describe(route)}")

    run(work)
