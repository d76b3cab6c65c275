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
