"""The plugin's settings, checked before any of them reaches Caddy or a process.

Each value is read from the panel on every call (a change through the API applies at
the next ``apply``), and each refusal is a :class:`ProviderError` that names the
setting and its rule: the panel shows it as the reason a deploy or ``gakwaya proxy
start`` failed, so an operator knows which value to fix.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gakwaya_sdk.providers import ProviderError

PLUGIN = "gakwaya-caddy"

#: Names an operator may give ``acme_ca`` instead of a URL.
ACME_PRESETS = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}

DEFAULTS: dict[str, Any] = {
    "admin_address": "127.0.0.1:2019",
    "managed": True,
    "caddy_binary": "caddy",
    "http_port": 80,
    "https_port": 443,
    "acme_ca": "letsencrypt",
    "acme_email": "",
    "acme_trusted_roots": "",
    "on_demand_tls": False,
    "on_demand_ask_url": "http://127.0.0.1:8000/api/v1/proxy/ask",
    "storage_dir": "",
}

_PORT = re.compile(r"^[1-9][0-9]{0,4}$")
#: URL host: a DNS name or an IPv4 address; ``[v6]`` literals are checked apart.
_HOST = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
#: URL path characters we pass on: enough for every public ACME directory
#: (``/directory``, ``/v2/DV90``, ``/acme/acme/directory``), nothing a parser could
#: read twice (no quotes, spaces, backslashes, ``;``, ``$``, parentheses).
_URL_PATH = re.compile(r"^(?:/[A-Za-z0-9._~%+-]*)*$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_BINARY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _refuse(name: str, value: object, rule: str) -> ProviderError:
    return ProviderError(f"setting {name}: {value!r} {rule}")


@dataclass(frozen=True)
class CaddySettings:
    """Every setting, checked; paths resolved against the plugin's data directory."""

    admin_host: str
    admin_port: int
    managed: bool
    caddy_binary: str
    http_port: int
    https_port: int
    #: The ACME directory URL (presets resolved).
    acme_ca: str
    acme_email: str
    acme_trusted_roots: str
    on_demand_tls: bool
    on_demand_ask_url: str
    #: Caddy's certificate storage.
    storage_dir: Path
    #: Whether the operator chose ``storage_dir`` (else the data directory's).
    storage_explicit: bool
    #: The plugin's own directory (managed process files, the TLS log).
    data_dir: Path

    @property
    def admin_address(self) -> str:
        host = f"[{self.admin_host}]" if ":" in self.admin_host else self.admin_host
        return f"{host}:{self.admin_port}"

    @property
    def tls_log(self) -> Path:
        """Where Caddy writes its certificate events (JSON lines): ``certs:acme``
        reads a failure's reason there."""
        return self.data_dir / "tls.log"


def check_admin_address(value: object) -> tuple[str, int]:
    """(host, port) of a loopback ``host:port``; anything else would expose Caddy's
    admin API, which can rewrite every site it serves, beyond this machine."""
    rule = "must be host:port on loopback: 127.0.0.1:<port>, [::1]:<port> or localhost:<port>"
    if not isinstance(value, str) or _CONTROL.search(value) or ":" not in value:
        raise _refuse("admin_address", value, rule)
    host, _, port = value.rpartition(":")
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise _refuse("admin_address", value, rule)
    if host == "localhost":
        return host, int(port)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise _refuse("admin_address", value, rule)  # an IPv6 literal needs brackets
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise _refuse("admin_address", value, rule) from None
    if not address.is_loopback:
        raise _refuse("admin_address", value, rule)
    return str(address), int(port)


def check_port(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _refuse(name, value, "must be a port number between 1 and 65535")
    return value


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _refuse(name, value, "must be true or false")
    return value


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    rule = (
        f"must be an {' or '.join(s + '://' for s in schemes)} URL: a host name or IP "
        "address, an optional port and a path of letters, digits and ._~%+- (no user, "
        "query, fragment, spaces or quotes)"
    )
    if _CONTROL.search(value) or len(value) > 2000:
        raise _refuse(name, value, rule)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _refuse(name, value, rule) from None
    host = parts.hostname or ""
    if (
        parts.scheme not in schemes
        or not parts.netloc
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
        or "?" in value
        or "#" in value
        or not _URL_PATH.fullmatch(parts.path)
        or (port is not None and not 1 <= port <= 65535)
    ):
        raise _refuse(name, value, rule)
    if ":" in host:  # an IPv6 literal
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse(name, value, rule) from None
    elif not _HOST.fullmatch(host):
        raise _refuse(name, value, rule)
    return value


def check_acme_ca(value: object) -> str:
    if not isinstance(value, str):
        raise _refuse("acme_ca", value, "must be letsencrypt, letsencrypt-staging or a URL")
    if value in ACME_PRESETS:
        return ACME_PRESETS[value]
    if "://" not in value:
        raise _refuse(
            "acme_ca",
            value,
            f"must be one of {', '.join(ACME_PRESETS)} or the https:// URL of an ACME "
            "(RFC 8555) directory",
        )
    return _check_url("acme_ca", value, ("https",))


def check_email(value: object) -> str:
    if value == "":
        return ""
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(value):
        raise _refuse("acme_email", value, "must be empty or an email address")
    return value


def check_absolute_path(name: str, value: object, *, file: bool = False) -> str:
    if value == "":
        return ""
    rule = "must be empty or an absolute path without control characters or '..'"
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or _CONTROL.search(value)
        or ".." in Path(value).parts
        or len(value) > 4096
    ):
        raise _refuse(name, value, rule)
    if file and not Path(value).is_file():
        raise _refuse(name, value, "must name an existing PEM file")
    return value


def check_binary(value: object) -> str:
    rule = "must be a program name (letters, digits, ._+-) looked up on PATH, or an absolute path"
    if not isinstance(value, str):
        raise _refuse("caddy_binary", value, rule)
    if _BINARY_NAME.fullmatch(value):
        return value
    check_absolute_path("caddy_binary", value)
    if not value:
        raise _refuse("caddy_binary", value, rule)
    return value


def load(values: Mapping[str, Any], data_dir: Path) -> CaddySettings:
    """The settings ``values`` (the panel's, over :data:`DEFAULTS`), checked."""
    merged = {**DEFAULTS, **{k: v for k, v in values.items() if v is not None}}
    host, port = check_admin_address(merged["admin_address"])
    http_port = check_port("http_port", merged["http_port"])
    https_port = check_port("https_port", merged["https_port"])
    if http_port == https_port:
        raise _refuse("https_port", https_port, "must differ from http_port")
    if port in (http_port, https_port):
        raise _refuse(
            "admin_address", merged["admin_address"], "must not use http_port or https_port"
        )
    storage = check_absolute_path("storage_dir", merged["storage_dir"])
    ask = merged["on_demand_ask_url"]
    if not isinstance(ask, str):
        raise _refuse("on_demand_ask_url", ask, "must be an http:// or https:// URL")
    return CaddySettings(
        admin_host=host,
        admin_port=port,
        managed=check_bool("managed", merged["managed"]),
        caddy_binary=check_binary(merged["caddy_binary"]),
        http_port=http_port,
        https_port=https_port,
        acme_ca=check_acme_ca(merged["acme_ca"]),
        acme_email=check_email(merged["acme_email"]),
        acme_trusted_roots=check_absolute_path(
            "acme_trusted_roots", merged["acme_trusted_roots"], file=True
        ),
        on_demand_tls=check_bool("on_demand_tls", merged["on_demand_tls"]),
        on_demand_ask_url=_check_url("on_demand_ask_url", ask, ("http", "https")),
        storage_dir=Path(storage) if storage else data_dir / "storage",
        storage_explicit=bool(storage),
        data_dir=data_dir,
    )


def seconds(value: float) -> str:
    """A duration for Caddy's JSON, written so it reads back as the same float."""
    return f"{float(value)!r}s"


_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_seconds(value: object) -> float | None:
    """Seconds of a duration in Caddy's JSON (a Go duration string, or nanoseconds),
    or None when it is neither (a hand edit the reconciler will replace)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value) / 1e9
        return result if math.isfinite(result) else None
    if not isinstance(value, str) or not value:
        return None
    if (
        value.endswith("s")
        and _GO_DURATION.fullmatch(value)
        and value[-2:] not in ("ns", "us", "ms", "µs")
    ):
        try:
            return float(value[:-1])  # what seconds() wrote: exact
        except ValueError:
            return None
    total, pos = 0.0, 0
    for match in _GO_DURATION.finditer(value):
        if match.start() != pos:
            return None
        total += float(match[1]) * _UNITS[match[2]]
        pos = match.end()
    return total if pos == len(value) else None
