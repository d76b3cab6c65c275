"""``gakwaya domain``: apps' domains from the server's command line.

The same services and request Structs as ``/api/v1/orgs/{org}/apps/{id}/domains`` and
``/api/v1/orgs/{org}/domains/{id}``: a name the API refuses is refused here, with the
argument's name and the rule. An app is named by its id or ``project/environment/name``.
"""

from __future__ import annotations

from typing import Any

import click

from gakwaya.cli.common import fail, main
from gakwaya.cli.org import audit, publish, run, validated
from gakwaya.cli.project import ORG_OPTION, each_page, field_errors

#: API field → the argument or option that sets it, for error messages.
OPTIONS = {
    "name": "NAME",
    "redirect": "--redirect",
    "max_body_mb": "--max-body-mb",
    "timeout_seconds": "--timeout",
    "https_redirect": "--https-redirect",
}
REDIRECTS = click.Choice(["none", "www_to_apex", "apex_to_www"])


def _describe(view: Any) -> list[str]:
    """The lines of ``domain show``: what it is, the records to create, the certificate."""
    state = "active" if view.active else "pending verification"
    name = view.name if view.display_name == view.name else f"{view.name} ({view.display_name})"
    lines = [
        f"id:            {view.id}",
        f"name:          {name}",
        f"app:           {view.app_id}",
        f"kind:          {view.kind}",
        f"state:         {state}",
        f"https:         {'redirect http to https' if view.https_redirect else 'http too'}",
        f"redirect:      {view.redirect}"
        + (f" ({', '.join(view.redirect_from)} redirects here)" if view.redirect_from else ""),
        f"max body:      {f'{view.max_body_mb} MiB' if view.max_body_mb else 'no limit'}",
        f"timeout:       {f'{view.timeout_seconds:g}s' if view.timeout_seconds else 'default'}",
    ]
    if view.dns_records:
        lines.append("DNS records to create:")
        for r in view.dns_records:
            lines.append(f"  {r.name:<40} {r.type:<5} {r.value}   ({r.purpose})")
    elif view.kind == "default":
        lines.append("DNS records:   none (the operator's wildcard record covers it)")
    if view.verification is not None and not view.active:
        checked = view.verification.checked_at
        lines.append(
            "last check:    "
            + (
                f"{checked:%Y-%m-%d %H:%M:%S} UTC: {view.verification.error}"
                if checked
                else "never"
            )
        )
    cert = view.certificate
    if cert is None:
        lines.append("certificate:   none (domains are served without TLS)")
    else:
        detail = cert.state
        if cert.not_after is not None:
            detail += f", expires {cert.not_after:%Y-%m-%d %H:%M} UTC"
        if cert.issuer:
            detail += f", issuer {cert.issuer}"
        if cert.reason:
            detail += f": {cert.reason}"
        lines.append(f"certificate:   {detail}")
    return lines


def _apply_routes(kernel: Any) -> None:
    from gakwaya.domains.services import refresh_routes

    error = refresh_routes(kernel)
    if error:
        click.secho(
            f"warning: the proxies were not updated ({error}); the reconciler retries", fg="yellow"
        )


@main.group("domain")
def domain_group() -> None:
    """Manage apps' domains: add, verify by DNS, options, certificates."""


@domain_group.command("add")
@ORG_OPTION
@click.argument("app")
@click.argument("name")
@click.option("--no-https-redirect", is_flag=True, help="Serve plain HTTP too.")
@click.option("--redirect", type=REDIRECTS, default="none", show_default=True)
@click.option("--max-body-mb", type=int, default=None, help="Largest request body, MiB.")
@click.option("--timeout", type=float, default=None, help="Seconds the app has to answer.")
def add(
    org_slug: str,
    app: str,
    name: str,
    no_https_redirect: bool,
    redirect: str,
    max_body_mb: int | None,
    timeout: float | None,
) -> None:
    """Add domain NAME to APP (id or project/environment/name), then print the DNS
    records to create.

    \b
    Example:
      gakwaya domain add --org acme shop/production/web www.example.com --redirect apex_to_www
    """
    from gakwaya.deploy import apps
    from gakwaya.domains import services
    from gakwaya.domains.events import DomainAdded
    from gakwaya.domains.schemas import DomainCreate
    from gakwaya.orgs import services as orgs

    data = validated(
        DomainCreate,
        OPTIONS,
        name=name,
        https_redirect=not no_https_redirect,
        redirect=redirect,
        max_body_mb=max_body_mb,
        timeout_seconds=timeout,
    )

    def work(kernel: Any) -> None:
        with field_errors(OPTIONS), kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            app_id = apps.find_app(db, org.id, app).id
            domain = services.add_domain(db, kernel, org_id=org.id, app_id=app_id, data=data)
            db.flush()
            view = services.view_of(kernel, db, domain)
            org_id = org.id
        publish(
            kernel,
            [
                DomainAdded(
                    org_id=org_id, domain_id=view.id, app_id=app_id, name=view.name, kind="custom"
                )
            ],
        )
        audit(
            kernel,
            "domain add",
            "domains_create",
            org_id=org_id,
            target_type="domain",
            target_id=str(view.id),
            detail={"name": view.name, "app_id": app_id},
        )
        click.secho(f"added domain {view.name} (id {view.id}) to app {app_id}", fg="green")
        for line in _describe(view):
            click.echo(line)
        click.echo(f"then: gakwaya domain verify --org {org_slug} {view.id}")

    run(work)


@domain_group.command("list")
@ORG_OPTION
@click.argument("app")
def list_(org_slug: str, app: str) -> None:
    """APP's domains."""
    from gakwaya.deploy import apps
    from gakwaya.domains import services
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            app_id = apps.find_app(db, org.id, app).id
            rows = each_page(
                lambda c: services.list_domains(db, org.id, app_id, cursor=c, limit=200)
            )
        if not rows:
            click.echo(f"no domains for app {app} (add one with: gakwaya domain add)")
            return
        click.echo(f"{'ID':>5}  {'NAME':<50}  {'KIND':<7}  {'STATE':<8}  CERTIFICATE")
        for d in rows:
            state = "active" if d.verified_at is not None else "pending"
            cert = d.cert_state if kernel.settings.domains_tls else "-"
            click.echo(f"{d.id:>5}  {d.name:<50}  {d.kind:<7}  {state:<8}  {cert}")

    run(work)


@domain_group.command("show")
@ORG_OPTION
@click.argument("domain_id", metavar="ID", type=int)
def show(org_slug: str, domain_id: int) -> None:
    """A domain: the DNS records to create, its state and its certificate's."""
    from gakwaya.domains import services
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            domain = services.get_domain(db, org.id, domain_id)
            view = services.view_of(kernel, db, domain, live=True)
        for line in _describe(view):
            click.echo(line)

    run(work)


@domain_group.command("verify")
@ORG_OPTION
@click.argument("domain_id", metavar="ID", type=int)
def verify(org_slug: str, domain_id: int) -> None:
    """Look the domain's TXT record up now; once seen, the domain is served."""
    from gakwaya.domains import services
    from gakwaya.domains.dns import lookup_txt
    from gakwaya.domains.events import DomainVerified
    from gakwaya.orgs import services as orgs

    def work(kernel: Any) -> None:
        with kernel.db.session() as db:
            org_id = orgs.get_org_by_slug(db, org_slug).id
        record, _token, active = services.challenge_of(kernel, org_id, domain_id)
        if active:
            click.echo(f"domain {domain_id} is already active")
            return
        lookup = lookup_txt(kernel.settings, record)
        with kernel.db.transaction() as db:
            domain = services.get_domain(db, org_id, domain_id, for_update=True)
            outcome = services.record_lookup(db, domain, lookup)
            name, app_id = domain.name, domain.app_id
        if outcome.conflict is not None:
            fail(outcome.conflict.detail)
        if not outcome.verified:
            fail(f"domain {name} is not verified yet: {outcome.error}")
        publish(
            kernel,
            [DomainVerified(org_id=org_id, domain_id=domain_id, app_id=app_id, name=name)],
        )
        audit(
            kernel,
            "domain verify",
            "domains_verify",
            org_id=org_id,
            target_type="domain",
            target_id=str(domain_id),
            detail={"name": name, "verified": True},
        )
        click.secho(f"domain {name} verified: it is served while app {app_id} runs", fg="green")
        _apply_routes(kernel)

    run(work)


@domain_group.command("set")
@ORG_OPTION
@click.argument("domain_id", metavar="ID", type=int)
@click.option("--https-redirect/--no-https-redirect", default=None, help="Redirect HTTP to HTTPS.")
@click.option("--redirect", type=REDIRECTS, default=None)
@click.option("--max-body-mb", type=int, default=None, help="Largest request body, MiB.")
@click.option("--no-max-body", is_flag=True, help="Remove the body size limit.")
@click.option("--timeout", type=float, default=None, help="Seconds the app has to answer.")
@click.option("--no-timeout", is_flag=True, help="Back to the proxy's default timeout.")
def set_(
    org_slug: str,
    domain_id: int,
    https_redirect: bool | None,
    redirect: str | None,
    max_body_mb: int | None,
    no_max_body: bool,
    timeout: float | None,
    no_timeout: bool,
) -> None:
    """Change a domain's options."""
    from gakwaya.domains import services
    from gakwaya.domains.events import DomainUpdated
    from gakwaya.domains.schemas import DomainUpdate
    from gakwaya.orgs import services as orgs

    given: dict[str, Any] = {}
    if https_redirect is not None:
        given["https_redirect"] = https_redirect
    if redirect is not None:
        given["redirect"] = redirect
    if max_body_mb is not None and no_max_body:
        fail("--max-body-mb and --no-max-body: give one of them", code=2)
    if timeout is not None and no_timeout:
        fail("--timeout and --no-timeout: give one of them", code=2)
    if max_body_mb is not None or no_max_body:
        given["max_body_mb"] = max_body_mb
    if timeout is not None or no_timeout:
        given["timeout_seconds"] = timeout
    data = validated(DomainUpdate, OPTIONS, **given)

    def work(kernel: Any) -> None:
        with field_errors(OPTIONS), kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            domain, changed = services.update_domain(
                db, kernel, org_id=org.id, domain_id=domain_id, data=data
            )
            org_id, app_id, active = org.id, domain.app_id, domain.verified_at is not None
        if not changed:
            click.echo("nothing to change")
            return
        publish(
            kernel,
            [DomainUpdated(org_id=org_id, domain_id=domain_id, app_id=app_id, fields=changed)],
        )
        audit(
            kernel,
            "domain set",
            "domains_update",
            org_id=org_id,
            target_type="domain",
            target_id=str(domain_id),
            detail={"fields": changed},
        )
        click.secho(f"updated domain {domain_id}: {', '.join(changed)}", fg="green")
        if active:
            _apply_routes(kernel)

    run(work)


@domain_group.command("remove")
@ORG_OPTION
@click.argument("domain_id", metavar="ID", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove(org_slug: str, domain_id: int, yes: bool) -> None:
    """Remove a custom domain; the proxies stop serving it."""
    from gakwaya.domains import services
    from gakwaya.domains.events import DomainRemoved
    from gakwaya.orgs import services as orgs

    if not yes:
        click.confirm(f"Remove domain {domain_id}? It is no longer served.", abort=True)

    def work(kernel: Any) -> None:
        with kernel.db.transaction() as db:
            org = orgs.get_org_by_slug(db, org_slug)
            domain = services.remove_domain(db, org_id=org.id, domain_id=domain_id)
            name, app_id, org_id = domain.name, domain.app_id, org.id
            active = domain.verified_at is not None
        publish(
            kernel, [DomainRemoved(org_id=org_id, domain_id=domain_id, app_id=app_id, name=name)]
        )
        audit(
            kernel,
            "domain remove",
            "domains_delete",
            org_id=org_id,
            target_type="domain",
            target_id=str(domain_id),
            detail={"name": name, "app_id": app_id},
        )
        click.secho(f"removed domain {name} (id {domain_id})", fg="green")
        if active:
            _apply_routes(kernel)

    run(work)
