"""Certificate states, from what Caddy leaves on disk.

Caddy's ACME client obtains and renews certificates itself; this module only reads
its results:

- the certificate storage: ``certificates/<issuer>/<name>/<name>.crt`` (``<issuer>``
  is the CA directory URL made a file name, e.g.
  ``acme-v02.api.letsencrypt.org-directory``; a wildcard's ``<name>`` is
  ``wildcard_.example.com``), parsed for its expiry and issuer;
- the TLS log the config points at (``logging.logs.gakwaya_tls``, JSON lines of the
  ``tls.obtain``, ``tls.renew`` and ``http.acme_client`` loggers): the latest error
  about a domain carries the CA's problem detail (``HTTP 400
  urn:ietf:params:acme:error:... - ...``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gakwaya_sdk.providers import CertificateStatus

#: How much of the end of the TLS log is read (Caddy rolls it at 10 MB).
LOG_TAIL_BYTES = 4 * 1024 * 1024
#: Messages that mean a certificate was obtained or renewed.
SUCCESS = ("certificate obtained successfully", "certificate renewed successfully")
#: The message of a failed attempt (obtain or renew), its ``error`` the CA's problem.
FAILURE = ("could not get certificate from issuer",)
MAX_REASON = 1000
#: A stored certificate is preloaded (:func:`preload_pair`) while more than this share
#: of its lifetime is left. Caddy renews at a third left (certmagic's default renewal
#: window): the preloaded copy must be gone by then, since Caddy does not renew it.
PRELOAD_MIN_LIFE_LEFT = 0.4


@dataclass(frozen=True)
class _Cert:
    not_after: dt.datetime
    issuer: str
    #: When the file was written (seconds since the epoch).
    written: float


def _storage_name(domain: str) -> str:
    return "wildcard_" + domain[1:] if domain.startswith("*.") else domain


def _newest_certificate(storage: Path, domain: str) -> _Cert | None:
    from cryptography import x509

    name = _storage_name(domain)
    best: _Cert | None = None
    try:
        issuers = list((storage / "certificates").iterdir())
    except OSError:
        return None
    for issuer_dir in issuers:
        path = issuer_dir / name / f"{name}.crt"
        try:
            data = path.read_bytes()
            written = path.stat().st_mtime
        except OSError:
            continue
        try:
            cert = x509.load_pem_x509_certificate(data)  # the leaf comes first
        except ValueError:
            continue
        found = _Cert(
            not_after=cert.not_valid_after_utc, issuer=cert.issuer.rfc4514_string(), written=written
        )
        if best is None or found.not_after > best.not_after:
            best = found
    return best


def preload_pair(
    storage: Path, domain: str, *, now: dt.datetime | None = None
) -> tuple[str, str] | None:
    """The storage keys (certificate, private key) of ``domain``'s stored certificate,
    for Caddy's ``load_storage`` loader, or None when it should not be preloaded.

    Why preload: Caddy 2.6 builds a new certificate cache on every config change and
    fills it with the managed certificates only after the new servers listen, so a
    handshake in between finds no certificate ("tlsv1 alert internal error"). A
    loaded certificate is in the cache before the servers start.

    Why only while plenty of its life is left: the cache keeps one copy of identical
    certificates, the loaded (unmanaged) one, so Caddy does not renew it. Leaving it out
    once :data:`PRELOAD_MIN_LIFE_LEFT` of its lifetime remains (the reconciler applies
    the config again then) gives renewal back to Caddy; the renewed certificate is
    preloaded in turn. A key that does not match its certificate (a renewal being
    written) is not preloaded: Caddy would refuse the whole config."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    now = now or dt.datetime.now(dt.UTC)
    name = _storage_name(domain)
    best: tuple[dt.datetime, Path] | None = None
    try:
        issuers = sorted((storage / "certificates").iterdir())
    except OSError:
        return None
    for issuer_dir in issuers:
        path = issuer_dir / name / f"{name}.crt"
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            continue
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        lifetime = (end - start).total_seconds()
        if lifetime <= 0 or not start <= now < end:
            continue
        if (end - now).total_seconds() <= lifetime * PRELOAD_MIN_LIFE_LEFT:
            continue
        key_path = path.with_suffix(".key")
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError):
            continue
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        encoding = serialization.Encoding.DER
        if key.public_key().public_bytes(encoding, public) != cert.public_key().public_bytes(
            encoding, public
        ):
            continue
        if best is None or end > best[0]:
            best = (end, path)
    if best is None:
        return None
    relative = best[1].relative_to(storage).as_posix()
    return relative, relative[: -len(".crt")] + ".key"


@dataclass
class _Events:
    error_at: float = 0.0
    error: str = ""
    success_at: float = 0.0


def _read_log(path: Path, domains: set[str]) -> dict[str, _Events]:
    events: dict[str, _Events] = {}
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_TAIL_BYTES))
            data = f.read()
    except OSError:
        return events
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the first, cut line of the tail; or not ours
        if not isinstance(entry, dict):
            continue
        identifier = entry.get("identifier")
        if identifier not in domains:
            continue
        ts = entry.get("ts")
        if not isinstance(ts, int | float):
            continue
        seen = events.setdefault(str(identifier), _Events())
        error = entry.get("error")
        if entry.get("msg") in FAILURE and isinstance(error, str):
            if error.endswith("context canceled"):
                continue  # Caddy stopping or reloading mid-attempt: not the CA's answer
            if ts >= seen.error_at:
                seen.error_at, seen.error = float(ts), error
        elif entry.get("msg") in SUCCESS:
            seen.success_at = max(seen.success_at, float(ts))
    return events


def status(storage: Path, tls_log: Path, domains: Sequence[str]) -> list[CertificateStatus]:
    """One state per domain, in order: ``issued`` (a certificate is stored, and no
    error came after it), ``failed`` (the latest attempt failed: the CA's reason; with
    the stored certificate's expiry while a renewal fails), else ``pending``."""
    events = _read_log(tls_log, set(domains))
    out: list[CertificateStatus] = []
    for domain in domains:
        cert = _newest_certificate(storage, domain)
        seen = events.get(domain, _Events())
        latest_good = max(seen.success_at, cert.written if cert else 0.0)
        if seen.error and seen.error_at > latest_good:
            out.append(
                CertificateStatus(
                    domain=domain,
                    state="failed",
                    not_after=cert.not_after if cert else None,
                    issuer=cert.issuer if cert else "",
                    reason=seen.error[:MAX_REASON],
                )
            )
        elif cert is not None:
            out.append(
                CertificateStatus(
                    domain=domain, state="issued", not_after=cert.not_after, issuer=cert.issuer
                )
            )
        else:
            out.append(CertificateStatus(domain=domain, state="pending"))
    return out
