"""Preloading stored certificates (what keeps a Caddy 2.6 config change from answering a
handshake with "internal error") and turning on ``tcp_migrate_req`` (what keeps it
from resetting queued connections): the rules, on certificate files made here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from gakwaya_caddy import config as caddy_config
from gakwaya_caddy.certs import preload_pair
from gakwaya_caddy.process import enable_request_migration
from gakwaya_caddy.settings import load
from gakwaya_sdk.providers import Route

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def make_pair(days_before: float, days_after: float, name: str) -> tuple[bytes, bytes]:
    """A certificate for ``name`` valid from NOW - days_before to NOW + days_after, and
    its key, as Caddy stores them (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name.replace("*", "star"))])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=days_before))
        .not_valid_after(NOW + dt.timedelta(days=days_after))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def store(
    storage: Path, issuer: str, name: str, days_before: float, days_after: float
) -> tuple[str, str]:
    stored = "wildcard_" + name[1:] if name.startswith("*.") else name
    folder = storage / "certificates" / issuer / stored
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = make_pair(days_before, days_after, name)
    (folder / f"{stored}.crt").write_bytes(cert)
    (folder / f"{stored}.key").write_bytes(key)
    base = f"certificates/{issuer}/{stored}/{stored}"
    return f"{base}.crt", f"{base}.key"


def test_a_fresh_certificate_is_preloaded_by_its_storage_keys(tmp_path: Path) -> None:
    keys = store(tmp_path, "acme.example-directory", "site.example.test", 10, 80)
    assert preload_pair(tmp_path, "site.example.test", now=NOW) == keys
    wildcard = store(tmp_path, "acme.example-directory", "*.apps.example.test", 1, 89)
    assert preload_pair(tmp_path, "*.apps.example.test", now=NOW) == wildcard


def test_a_certificate_near_its_renewal_is_left_to_caddy(tmp_path: Path) -> None:
    # 90 days of life, 36 left: exactly 40 %, Caddy renews at 30; not preloaded.
    store(tmp_path, "ca", "soon.example.test", 54, 36)
    assert preload_pair(tmp_path, "soon.example.test", now=NOW) is None
    store(tmp_path, "ca", "later.example.test", 53, 37)
    assert preload_pair(tmp_path, "later.example.test", now=NOW) is not None
    store(tmp_path, "ca", "expired.example.test", 91, -1)
    assert preload_pair(tmp_path, "expired.example.test", now=NOW) is None
    store(tmp_path, "ca", "future.example.test", -1, 91)
    assert preload_pair(tmp_path, "future.example.test", now=NOW) is None


def test_the_longest_lived_of_several_issuers_is_chosen(tmp_path: Path) -> None:
    store(tmp_path, "staging", "two.example.test", 1, 60)
    best = store(tmp_path, "production", "two.example.test", 1, 80)
    store(tmp_path, "zzz-other", "two.example.test", 1, 70)
    assert preload_pair(tmp_path, "two.example.test", now=NOW) == best


def test_a_key_that_does_not_match_or_cannot_be_read_is_not_preloaded(tmp_path: Path) -> None:
    store(tmp_path, "ca", "mixed.example.test", 1, 89)
    _other_cert, other_key = make_pair(1, 89, "mixed.example.test")
    folder = tmp_path / "certificates" / "ca" / "mixed.example.test"
    (folder / "mixed.example.test.key").write_bytes(other_key)  # a renewal half written
    assert preload_pair(tmp_path, "mixed.example.test", now=NOW) is None
    (folder / "mixed.example.test.key").write_bytes(b"not a key")
    assert preload_pair(tmp_path, "mixed.example.test", now=NOW) is None
    (folder / "mixed.example.test.key").unlink()
    assert preload_pair(tmp_path, "mixed.example.test", now=NOW) is None
    (folder / "mixed.example.test.crt").write_bytes(b"not a certificate")
    assert preload_pair(tmp_path, "mixed.example.test", now=NOW) is None
    assert preload_pair(tmp_path / "missing", "mixed.example.test", now=NOW) is None


def _settings(tmp_path: Path) -> Any:
    return load(
        {"admin_address": "127.0.0.1:2999", "storage_dir": str(tmp_path / "storage")},
        tmp_path / "data",
    )


def _build(tmp_path: Path, routes: list[Route], live: Any = None) -> dict[str, Any]:
    settings = _settings(tmp_path)
    parts = caddy_config.build(routes, settings, dns_challenge=None)
    return caddy_config.merge(live or {}, parts, settings)


def test_the_config_preloads_the_stored_certificates_of_its_tls_names(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    now = dt.datetime.now(dt.UTC)
    days = (now - NOW).total_seconds() / 86400
    site = store(storage, "ca", "site.example.test", 1 - days, 89 + days)
    www = store(storage, "ca", "www.site.example.test", 1 - days, 89 + days)
    store(storage, "ca", "plain.example.test", 1 - days, 89 + days)  # served without TLS
    routes = [
        Route(
            app="a1",
            domain="site.example.test",
            upstreams=["127.0.0.1:9000"],
            redirect_from=["www.site.example.test"],
        ),
        Route(app="a2", domain="plain.example.test", upstreams=["127.0.0.1:9001"], tls=False),
        Route(app="a3", domain="new.example.test", upstreams=["127.0.0.1:9002"]),  # none yet
    ]
    config = _build(tmp_path, routes)
    loader = config["apps"]["tls"]["certificates"]["load_storage"]
    assert loader == {
        "@id": "gakwaya_preload",
        "pairs": [
            {"certificate": site[0], "key": site[1]},
            {"certificate": www[0], "key": www[1]},
        ],
    }
    # Without a stored certificate left, our loader goes, and nothing else of the tls app.
    for path in (storage / "certificates").rglob("*.crt"):
        path.unlink()
    again = _build(tmp_path, routes, live=config)
    assert "certificates" not in again["apps"]["tls"]
    assert again["apps"]["tls"]["automation"] == config["apps"]["tls"]["automation"]


def test_an_operators_own_loader_is_left_alone(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    store(storage, "ca", "site.example.test", 0, 90)
    theirs = {"pairs": [{"certificate": "mine.crt", "key": "mine.key"}]}
    live = {"apps": {"tls": {"certificates": {"load_storage": theirs, "load_files": []}}}}
    route = Route(app="a1", domain="site.example.test", upstreams=["127.0.0.1:9000"])
    config = _build(tmp_path, [route], live=live)
    assert config["apps"]["tls"]["certificates"] == {"load_storage": theirs, "load_files": []}
    # Ours next to another loader of theirs: only ours is replaced.
    ours = {"@id": "gakwaya_preload", "pairs": []}
    live = {"apps": {"tls": {"certificates": {"load_storage": ours, "load_files": []}}}}
    config = _build(tmp_path, [route], live=live)
    certificates = config["apps"]["tls"]["certificates"]
    assert certificates["load_files"] == []
    assert [p["certificate"] for p in certificates["load_storage"]["pairs"]] == [
        "certificates/ca/site.example.test/site.example.test.crt"
    ]


def test_request_migration_is_turned_on_or_its_absence_said(tmp_path: Path) -> None:
    said: list[str] = []
    sysctl = tmp_path / "tcp_migrate_req"
    sysctl.write_text("0\n")
    enable_request_migration(said.append, sysctl)
    assert sysctl.read_text() == "1\n"
    assert said == [
        "turned on net.ipv4.tcp_migrate_req (no connection is reset when Caddy reloads)"
    ]
    said.clear()
    enable_request_migration(said.append, sysctl)  # already on: nothing said
    assert said == []
    enable_request_migration(said.append, tmp_path / "missing")
    assert said and "this kernel has no net.ipv4.tcp_migrate_req" in said[0]
    said.clear()
    # A file that reads but cannot be written, even by root.
    enable_request_migration(said.append, Path("/proc/sys/kernel/osrelease"))
    assert said and "cannot turn on net.ipv4.tcp_migrate_req" in said[0]
    assert "sysctl -w net.ipv4.tcp_migrate_req=1" in said[0]
