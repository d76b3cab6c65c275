"""Plugin settings: the values operators set for what each manifest declares.

A manifest's ``settings`` list is the schema: name, type, default, whether the
value is secret, and its scope. An ``installation`` setting has one value, set by
a superuser; an ``organization`` setting may also be set by each organization's
admins, and the installation's value is then the default for organizations that
did not. Without any stored value, the manifest's default applies.

Values live in ``plugin_settings``: JSON text, or for secrets only the
installation key's ciphertext of that JSON. Nothing here caches: a plugin calling
``panel.settings(...)`` sees a change as soon as it is committed, in every process.

A stored value is data: it is never put into a command line, a path or a shell by
the kernel, and is stored exactly as given (a string with ``;`` or a newline stays
that string). A plugin that passes a setting to a process must validate it itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gakwaya.db.base import utcnow
from gakwaya.db.models import PluginSetting
from gakwaya.errors import Conflict, FieldError, FieldProblem, NotFound, Problem
from gakwaya.plugins.host import ACTIVE, DEGRADED
from gakwaya_sdk.manifest import Manifest, SettingField, setting_value

if TYPE_CHECKING:
    from gakwaya.kernel import Kernel

log = logging.getLogger("gakwaya.plugins")

INSTALLATION = "installation"
ORGANIZATION = "organization"
DEFAULT = "default"

#: Longest accepted value, as JSON: settings configure, they do not store documents.
MAX_VALUE_BYTES = 65_536


class SettingView(msgspec.Struct, kw_only=True):
    """One setting as the API shows it; a secret's value (and default) is never shown."""

    name: str
    type: str
    scope: str
    secret: bool
    required: bool
    description: str
    default: Any
    #: The value in effect; ``None`` for secrets.
    value: Any
    #: A stored value is in effect (``source`` says whose), not the manifest default.
    is_set: bool
    #: ``organization``, ``installation`` or ``default``.
    source: str


class SettingsView(msgspec.Struct, kw_only=True):
    plugin: str
    #: The organization's slug for an organization's view, else ``None``.
    org: str | None = None
    settings: list[SettingView]
    #: Required settings with no value in effect: the plugin cannot work until set.
    missing: list[str]


class SettingsInvalid(FieldError):
    """Several entries of one update broke a rule: each is listed, nothing was written."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(*problems[0])
        self.problems = problems
        self.detail = "; ".join(f"{field}: {rule}" for field, rule in problems)

    def problem(self) -> Problem:
        return Problem(
            title=self.title,
            status=self.status_code,
            detail=self.detail,
            errors=[
                FieldProblem(field=field, rule=rule, message=f"{field}: {rule}")
                for field, rule in self.problems
            ],
        )


def manifest_of(kernel: Kernel, plugin: str) -> Manifest:
    """The manifest of a plugin this process runs (active or degraded), else 404.

    A disabled or refused plugin is not offered: its manifest may not even be valid,
    and its settings configure nothing until it runs."""
    manifest = kernel.plugins.manifests.get(plugin)
    status = kernel.plugins.statuses.get(plugin)
    if manifest is None or status is None or status.status not in (ACTIVE, DEGRADED):
        raise NotFound(f"plugin {plugin!r} not found (or not active)")
    return manifest


# Reading ------------------------------------------------------------------------------


def _stored(session: Session, plugin: str, org_id: int | None) -> list[PluginSetting]:
    """The installation-wide rows of ``plugin``, plus ``org_id``'s when given."""
    where: ColumnElement[bool] = PluginSetting.org_id.is_(None)
    if org_id is not None:
        where = or_(where, PluginSetting.org_id == org_id)
    return list(session.scalars(select(PluginSetting).where(PluginSetting.plugin == plugin, where)))


def _decode(kernel: Kernel, field: SettingField, row: PluginSetting) -> tuple[bool, Any]:
    """``(usable, value)`` of a stored row; an unusable one is logged and skipped.

    A row can stop fitting its setting when a plugin upgrade changes the type, or
    when the installation's secret key changed: the next level then applies."""
    try:
        if row.ciphertext is not None:
            raw = msgspec.json.decode(kernel.box.decrypt(row.ciphertext))
        elif row.value is not None:
            raw = msgspec.json.decode(row.value)
        else:
            return False, None
        return True, setting_value(field, raw)
    except (ValueError, msgspec.DecodeError) as exc:
        where = f"organization {row.org_id}" if row.org_id is not None else "installation"
        log.error(
            "plugin %s setting %s (%s): stored value ignored: %s",
            row.plugin,
            row.name,
            where,
            exc,
        )
        return False, None


def _resolve(
    kernel: Kernel,
    manifest: Manifest,
    rows: Iterable[PluginSetting],
    org_id: int | None,
    *,
    decode_secrets: bool,
) -> dict[str, tuple[str, Any]]:
    """name → (source, value) for every declared setting."""
    by_level: dict[tuple[str, bool], PluginSetting] = {}
    for row in rows:
        by_level[(row.name, row.org_id is not None)] = row
    out: dict[str, tuple[str, Any]] = {}
    for field in manifest.settings:
        levels: list[tuple[str, PluginSetting | None]] = []
        if org_id is not None and field.scope == ORGANIZATION:
            levels.append((ORGANIZATION, by_level.get((field.name, True))))
        levels.append((INSTALLATION, by_level.get((field.name, False))))
        out[field.name] = (DEFAULT, field.default)
        for source, stored in levels:
            if stored is None:
                continue
            if field.secret and not decode_secrets:
                # The view never decrypts: whether a value is set is all it shows.
                out[field.name] = (source, None)
                break
            usable, value = _decode(kernel, field, stored)
            if usable:
                out[field.name] = (source, value)
                break
    return out


def effective_settings(kernel: Kernel, plugin: str, *, org_id: int | None = None) -> dict[str, Any]:
    """Every declared setting of ``plugin`` with the value in effect, secrets decrypted.

    With ``org_id``, an ``organization`` setting takes that organization's value
    when it set one; then the installation's value; then the manifest's default.
    This is what plugins get from ``panel.settings(...)``: read on every call, so
    a change is seen without a restart."""
    manifest = manifest_of(kernel, plugin)
    if not manifest.settings:
        return {}
    with kernel.db.session() as session:
        rows = _stored(session, plugin, org_id)
    resolved = _resolve(kernel, manifest, rows, org_id, decode_secrets=True)
    return {name: value for name, (_source, value) in resolved.items()}


def view(
    kernel: Kernel,
    session: Session,
    plugin: str,
    *,
    org_id: int | None = None,
    org_slug: str | None = None,
) -> SettingsView:
    """What the API and the CLI show; secrets never leave as values.

    The installation's view lists every setting with its installation value; an
    organization's view lists only ``organization`` settings, with the value that
    organization gets."""
    manifest = manifest_of(kernel, plugin)
    fields = [f for f in manifest.settings if org_id is None or f.scope == ORGANIZATION]
    rows = _stored(session, plugin, org_id) if fields else []
    resolved = _resolve(kernel, manifest, rows, org_id, decode_secrets=False)
    items: list[SettingView] = []
    missing: list[str] = []
    for field in fields:
        source, value = resolved[field.name]
        is_set = source != DEFAULT
        if field.required and not is_set and field.default is None:
            missing.append(field.name)
        items.append(
            SettingView(
                name=field.name,
                type=field.type,
                scope=field.scope,
                secret=field.secret,
                required=field.required,
                description=field.description,
                default=None if field.secret else field.default,
                value=None if field.secret else value,
                is_set=is_set,
                source=source,
            )
        )
    return SettingsView(plugin=plugin, org=org_slug, settings=items, missing=missing)


def org_views(
    kernel: Kernel, session: Session, *, org_id: int, org_slug: str
) -> list[SettingsView]:
    """:func:`view` of every running plugin declaring ``organization`` settings, in
    load order."""
    out: list[SettingsView] = []
    for name in kernel.plugins.order:
        manifest = kernel.plugins.manifests.get(name)
        status = kernel.plugins.statuses.get(name)
        if manifest is None or status is None or status.status not in (ACTIVE, DEGRADED):
            continue
        if any(f.scope == ORGANIZATION for f in manifest.settings):
            out.append(view(kernel, session, name, org_id=org_id, org_slug=org_slug))
    return out


# Writing ------------------------------------------------------------------------------


def _check(
    manifest: Manifest, values: Mapping[str, Any], org_id: int | None
) -> dict[str, tuple[SettingField, Any]]:
    """Every entry converted, or :class:`SettingsInvalid` listing each broken one."""
    fields = {f.name: f for f in manifest.settings}
    checked: dict[str, tuple[SettingField, Any]] = {}
    problems: list[tuple[str, str]] = []
    for name, value in values.items():
        key = f"values.{name[:200]}"
        field = fields.get(name)
        if field is None:
            problems.append((key, f"is not a setting of plugin {manifest.name!r}"))
            continue
        if org_id is not None and field.scope != ORGANIZATION:
            problems.append((key, "is installation-wide; a superuser sets it"))
            continue
        if value is None:
            checked[name] = (field, None)
            continue
        try:
            converted = setting_value(field, value)
        except ValueError as exc:
            problems.append((key, str(exc)))
            continue
        if len(msgspec.json.encode(converted)) > MAX_VALUE_BYTES:
            problems.append((key, f"must be at most {MAX_VALUE_BYTES} bytes as JSON"))
            continue
        checked[name] = (field, converted)
    if problems:
        raise SettingsInvalid(problems)
    return checked


def update(
    kernel: Kernel,
    session: Session,
    plugin: str,
    values: Mapping[str, Any],
    *,
    org_id: int | None = None,
    by: str,
) -> tuple[list[str], list[str]]:
    """Set (a value) or unset (``None``: back to the installation value, then the
    default) several settings at once; return the names ``(set, unset)``.

    All or nothing: every entry is checked before anything is written, and the
    writes join ``session``'s transaction (the caller commits). With ``org_id``,
    only ``organization`` settings may be given."""
    manifest = manifest_of(kernel, plugin)
    checked = _check(manifest, values, org_id)
    if not checked:
        return [], []
    level = PluginSetting.org_id.is_(None) if org_id is None else PluginSetting.org_id == org_id
    existing = {
        row.name: row
        for row in session.scalars(
            select(PluginSetting).where(
                PluginSetting.plugin == plugin,
                level,
                PluginSetting.name.in_(list(checked)),
            )
        )
    }
    now = utcnow()
    set_names: list[str] = []
    unset_names: list[str] = []
    for name, (field, value) in checked.items():
        row = existing.get(name)
        if value is None:
            unset_names.append(name)
            if row is not None:
                session.execute(delete(PluginSetting).where(PluginSetting.id == row.id))
            continue
        set_names.append(name)
        text = msgspec.json.encode(value).decode()
        if row is None:
            row = PluginSetting(plugin=plugin, org_id=org_id, name=name)
            session.add(row)
        row.value = None if field.secret else text
        row.ciphertext = kernel.box.encrypt(text) if field.secret else None
        row.updated_at = now
        row.updated_by = by
    try:
        session.flush()
    except IntegrityError:
        # Another writer added the same setting first (PostgreSQL), or the
        # organization was just deleted.
        session.rollback()
        raise Conflict(
            f"the settings of plugin {plugin!r} changed at the same time; try again"
        ) from None
    return sorted(set_names), sorted(unset_names)
