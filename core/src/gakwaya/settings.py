"""Settings from ``GAKWAYA_*`` environment variables and an optional TOML file.

Precedence: environment over file over defaults. The file is ``GAKWAYA_CONFIG``
or ``<data_dir>/gakwaya.toml`` when it exists. A bad value raises
:class:`SettingsError` whose message is one line naming the setting, so the
CLI can stop start-up with it.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec

ENV_PREFIX = "GAKWAYA_"
DEFAULT_DATA_DIR = "./gakwaya-data"


class SettingsError(Exception):
    """A setting could not be read; the message names it and the rule."""


Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every kernel setting. Field names map to ``GAKWAYA_<NAME>`` in upper case."""

    data_dir: str = DEFAULT_DATA_DIR
    #: SQLAlchemy URL; default: SQLite file ``gakwaya.db`` inside ``data_dir``.
    database_url: str = ""
    #: ``redis://...``; empty means in-process jobs and single-process events.
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: Port = 8000
    #: Threads per server process for request work (sync handlers, the auth lookup).
    request_threads: Annotated[int, msgspec.Meta(ge=1, le=256)] = 8
    #: Server processes of ``gakwaya serve`` (one per core is a good start).
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    #: The address people open, used in printed links; default ``http://host:port``.
    base_url: str = ""
    #: Fernet key (urlsafe base64, 32 bytes); default: generated once into data_dir.
    secret_key: str = ""
    #: Networks whose X-Forwarded-For is believed, e.g. ``["127.0.0.1/32"]``.
    trusted_proxies: list[str] = []
    session_ttl_hours: Positive = 24 * 14
    #: "auto" (Secure when base_url is https), "true" or "false".
    cookie_secure: str = "auto"
    log_level: str = "info"
    #: Threads of the in-process job runner (used when redis_url is empty).
    job_threads: Positive = 4
    #: A running job whose heartbeat is older than this is taken as abandoned.
    job_heartbeat_timeout: Positive = 60
    job_heartbeat_interval: Positive = 5
    reaper_interval: Positive = 15
    #: Seconds old instances keep running, no longer routed, after traffic switched to
    #: a new release (the requests they hold finish), before SIGTERM. The deployment
    #: has succeeded by then.
    deploy_drain_seconds: Annotated[float, msgspec.Meta(ge=0, le=600)] = 2
    #: Seconds between two passes of the reconciler (desired state vs the runtime).
    reconcile_interval: Positive = 30
    #: ``core.prune`` deletes jobs finished, and events stored, longer ago than this.
    job_retention_days: Positive = 30
    event_retention_days: Positive = 30
    #: Failed logins before a lock: per account, and per client address.
    login_max_failures_account: Positive = 5
    login_max_failures_ip: Positive = 20
    login_window_seconds: Positive = 900
    login_lock_seconds: Positive = 300
    password_min_length: Positive = 12
    #: Plugins (by entry-point name) not to load.
    disabled_plugins: list[str] = []
    #: Extra modules to load as plugins without packaging them (plugin development,
    #: tests). Only an operator sets this; it is not reachable through the API.
    plugin_modules: list[str] = []
    #: JSON file of blocked plugin versions: ``[{name, lowest_good_version, reason}]``.
    plugin_blocklist: str = ""
    #: Log every plugin hook call with plugin, hook and duration (logger
    #: ``gakwaya.plugins.trace``).
    plugin_trace: bool = False
    #: The signed plugin index ``gakwaya plugins search|info|install|upgrade`` read: an
    #: https:// (or http://) URL, a file:// URL or a path; empty: none configured.
    plugin_index_url: str = ""
    #: Keys whose signature on the index is trusted: ``KEYID=BASE64PUBLIC`` each.
    plugin_trusted_keys: list[str] = []
    #: The record of installed marketplace plugins, reproduced by ``plugins sync``.
    plugins_lock: str = "plugins.lock"
    #: Python of the environment plugins are installed into; empty: the panel's own.
    plugin_python: str = ""
    #: Host ports given to apps, one each, lowest free first: ``LOW-HIGH``.
    app_port_range: str = "20000-29999"
    #: The most replicas one app may ask for.
    app_max_replicas: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    #: Default domains ``<app>-<env>.<proxy_base_domain>``; empty: none. Point a wildcard
    #: DNS record ``*.<proxy_base_domain>`` at the server.
    proxy_base_domain: str = ""
    #: The server's public addresses, shown as the A/AAAA records of custom domains.
    server_ipv4: str = ""
    server_ipv6: str = ""
    #: DNS server (``host[:port]``, an IP address) asked for domains' TXT records;
    #: empty: the system's resolvers.
    dns_resolver: str = ""
    #: The panel's own domain, served by the HTTP proxy in front of it; empty: none.
    panel_domain: str = ""
    #: Serve domains over HTTPS with certificates the proxy obtains.
    domains_tls: bool = True

    def __post_init__(self) -> None:
        for net in self.trusted_proxies:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise SettingsError(
                    f"trusted_proxies: {net!r} is not an IP address or network"
                ) from None
        if self.cookie_secure not in ("auto", "true", "false"):
            raise SettingsError("cookie_secure: must be one of auto, true, false")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise SettingsError("log_level: must be one of debug, info, warning, error")
        for name in ("database_url",):
            value = getattr(self, name)
            if value and not value.startswith(("sqlite", "postgresql")):
                raise SettingsError(f"{name}: must start with sqlite:// or postgresql://")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("redis_url: must start with redis://, rediss:// or unix://")
        self._check_plugin_sources()
        self.app_ports  # noqa: B018 (raises SettingsError on a bad range)
        self._check_domains()

    def _check_domains(self) -> None:
        from gakwaya_sdk.domains import DOMAIN_RULE, check_domain
        from gakwaya_sdk.sources import RuleError

        for name in ("proxy_base_domain", "panel_domain"):
            if value := getattr(self, name):
                try:
                    setattr(self, name, check_domain(value))
                except RuleError:
                    raise SettingsError(f"{name}: must be empty or {DOMAIN_RULE}") from None
        for name, version in (("server_ipv4", 4), ("server_ipv6", 6)):
            if value := getattr(self, name):
                try:
                    address = ipaddress.ip_address(value)
                except ValueError:
                    address = None
                if address is None or address.version != version:
                    raise SettingsError(f"{name}: must be empty or an IPv{version} address")
        self.dns_address  # noqa: B018 (raises SettingsError on a bad address)

    def _check_plugin_sources(self) -> None:
        from gakwaya.plugins.sources import check_index, parse_trusted_keys

        if self.plugin_index_url:
            try:
                check_index(self.plugin_index_url)
            except ValueError as exc:
                raise SettingsError(f"plugin_index_url: {exc}") from None
        try:
            parse_trusted_keys(self.plugin_trusted_keys)
        except ValueError as exc:
            raise SettingsError(f"plugin_trusted_keys: {exc}") from None
        if not self.plugins_lock or any(c in self.plugins_lock for c in "\0\n\r"):
            raise SettingsError("plugins_lock: must be a file path")
        if self.plugin_python and (
            not Path(self.plugin_python).is_absolute()
            or any(c in self.plugin_python for c in "\0\n\r")
        ):
            raise SettingsError("plugin_python: must be the absolute path of a python executable")

    # Derived values -----------------------------------------------------------------

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{self.data_path / 'gakwaya.db'}"

    @property
    def effective_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def app_ports(self) -> tuple[int, int]:
        """``app_port_range`` as (low, high), both included."""
        low, sep, high = self.app_port_range.partition("-")
        if sep and low.strip().isdigit() and high.strip().isdigit():
            lo, hi = int(low), int(high)
            if 1024 <= lo <= hi <= 65535:
                return lo, hi
        raise SettingsError(
            "app_port_range: must be LOW-HIGH with 1024 <= LOW <= HIGH <= 65535, e.g. 20000-29999"
        )

    @property
    def dns_address(self) -> tuple[str, int] | None:
        """``dns_resolver`` as (IP address, port), or None for the system's resolvers."""
        value = self.dns_resolver.strip()
        if not value:
            return None
        host, port = value, "53"
        if value.startswith("["):
            host, bracket, rest = value[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ("" if rest or not bracket else "53")
        elif value.count(":") == 1:
            host, _, port = value.partition(":")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is None or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise SettingsError(
                "dns_resolver: must be empty or IP[:PORT] of a DNS server, e.g. 127.0.0.1:53 "
                "or [::1]:53"
            )
        return str(address), int(port)

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure == "auto":
            return self.effective_base_url.startswith("https://")
        return self.cookie_secure == "true"


_LIST_FIELDS = {
    "trusted_proxies",
    "disabled_plugins",
    "plugin_modules",
    "plugin_trusted_keys",
}


def _from_env(environ: dict[str, str]) -> dict[str, Any]:
    known = set(Settings.__struct_fields__)
    out: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == "GAKWAYA_CONFIG":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in known:
            continue
        if name in _LIST_FIELDS:
            out[name] = [p.strip() for p in raw.split(",") if p.strip()]
        else:
            out[name] = raw
    return out


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings; raise :class:`SettingsError` with one line on a bad value."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    config_path = env.get("GAKWAYA_CONFIG")
    env_values = _from_env(env)
    data_dir = overrides.get("data_dir") or env_values.get("data_dir") or DEFAULT_DATA_DIR
    path = Path(config_path) if config_path else Path(data_dir).expanduser() / "gakwaya.toml"
    if config_path and not path.is_file():
        raise SettingsError(f"GAKWAYA_CONFIG: file {path} does not exist")
    if path.is_file():
        try:
            values.update(tomllib.loads(path.read_text()))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    values.update(env_values)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_describe(exc, env_values)) from None


def _describe(exc: msgspec.ValidationError, env_values: dict[str, Any]) -> str:
    message = str(exc)
    field = ""
    if " - at `$." in message:
        message, _, where = message.rpartition(" - at `$.")
        field = where.rstrip("`").split("[")[0]
    elif message.startswith("Object contains unknown field"):
        return f"settings file: {message.lower()}"
    if field:
        source = f"GAKWAYA_{field.upper()}" if field in env_values else field
        return f"{source}: {message[0].lower()}{message[1:]}"
    return message
