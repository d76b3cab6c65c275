"""The ACME test kit (:mod:`gakwaya.testing.acme`) against the real servers.

challtestsrv answers what its API set, Pebble serves its directory over the listener
CA only, and a Caddy configured the way the Caddy plugin will configure it gets a
certificate from Pebble by HTTP-01 and by TLS-ALPN-01, which verifies against
``roots_pem()``.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from cryptography import x509

from gakwaya.testing.acme import (
    Challtestsrv,
    Pebble,
    ServerFailed,
    free_port,
    http_call,
    log_tail,
    run_caddy,
    start_pebble,
)


def query(
    server: Challtestsrv, name: str, rdtype: str, *, tcp: bool = False
) -> dns.message.Message:
    message = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(message, server.dns_host, port=server.dns_port, timeout=5)


def txt_values(server: Challtestsrv, name: str) -> list[str]:
    answer = query(server, name, "TXT")
    return sorted(
        b"".join(rdata.strings).decode()
        for rrset in answer.answer
        if rrset.rdtype == dns.rdatatype.TXT
        for rdata in rrset
    )


def addresses(server: Challtestsrv, name: str, rdtype: str) -> list[str]:
    answer = query(server, name, rdtype)
    assert answer.rcode() == dns.rcode.NOERROR
    return sorted(rdata.to_text() for rrset in answer.answer for rdata in rrset)


# challtestsrv ----------------------------------------------------------------------------


def test_txt_set_through_the_api_is_answered_then_cleared(challtestsrv: Challtestsrv) -> None:
    name = "_gakwaya-challenge.txt-kit.example.test"
    assert txt_values(challtestsrv, name) == []

    challtestsrv.set_txt(name, "token-one")
    assert txt_values(challtestsrv, name) == ["token-one"]
    # Over TCP too (resolvers fall back to it for large answers).
    tcp = query(challtestsrv, name, "TXT", tcp=True)
    assert [b"".join(r.strings) for rrset in tcp.answer for r in rrset] == [b"token-one"]

    challtestsrv.set_txt(name, "token-two")  # replaces
    assert txt_values(challtestsrv, name) == ["token-two"]
    challtestsrv.add_txt(name, "token-three")  # adds
    assert txt_values(challtestsrv, name) == ["token-three", "token-two"]

    challtestsrv.clear_txt(name + ".")  # a trailing dot is accepted too
    assert txt_values(challtestsrv, name) == []


def test_every_name_is_loopback_over_ipv4_only(challtestsrv: Challtestsrv) -> None:
    assert addresses(challtestsrv, "anything.example.test", "A") == ["127.0.0.1"]
    assert addresses(challtestsrv, "anything.example.test", "AAAA") == []

    challtestsrv.set_a("moved.example.test", "127.0.0.2")
    try:
        assert addresses(challtestsrv, "moved.example.test", "A") == ["127.0.0.2"]
    finally:
        challtestsrv.clear_a("moved.example.test")
    assert addresses(challtestsrv, "moved.example.test", "A") == ["127.0.0.1"]


# Pebble ----------------------------------------------------------------------------------


def test_pebble_directory_is_served_over_the_listener_ca_only(pebble: Pebble) -> None:
    status, body = http_call("GET", pebble.directory_url, context=pebble.ssl_context())
    assert status == 200
    assert b"newOrder" in body
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        http_call("GET", pebble.directory_url, context=ssl.create_default_context())
    assert pebble.dns is not None and pebble.dns.dns_address.startswith("127.0.0.1:")
    assert len({pebble.http_port, pebble.tls_port}) == 2


def test_pebble_roots_are_ca_certificates(pebble: Pebble) -> None:
    roots = x509.load_pem_x509_certificates(pebble.roots_pem().encode())
    intermediates = x509.load_pem_x509_certificates(pebble.intermediates_pem().encode())
    assert len(roots) == 1  # no PEBBLE_ALTERNATE_ROOTS
    assert roots[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert intermediates[0].issuer == roots[0].subject


# A real issuance through Caddy ------------------------------------------------------------


def caddy_config(pebble: Pebble, domain: str, challenge: str) -> dict[str, Any]:
    """What the Caddy plugin will send: Pebble as the ACME CA, its listener CA trusted,
    Caddy on Pebble's validation ports, one challenge type left enabled."""
    disabled = {"http-01": "tls-alpn", "tls-alpn-01": "http"}[challenge]
    return {
        "apps": {
            "http": {
                "http_port": pebble.http_port,
                "https_port": pebble.tls_port,
                "servers": {
                    "kit": {
                        "listen": [f"127.0.0.1:{pebble.tls_port}"],
                        "routes": [
                            {
                                "match": [{"host": [domain]}],
                                "handle": [
                                    {"handler": "static_response", "body": f"hello {domain}"}
                                ],
                            }
                        ],
                    }
                },
            },
            "tls": {
                "automation": {
                    "policies": [
                        {
                            "subjects": [domain],
                            "issuers": [
                                {
                                    "module": "acme",
                                    "ca": pebble.directory_url,
                                    "trusted_roots_pem_files": [str(pebble.listener_ca_path)],
                                    "challenges": {disabled: {"disabled": True}},
                                }
                            ],
                        }
                    ]
                }
            },
        }
    }


def fetch_over_tls(port: int, domain: str, cadata: str) -> tuple[x509.Certificate, bytes]:
    """GET / from 127.0.0.1:port with SNI ``domain``, verifying the chain against
    ``cadata`` and the name; the leaf and the response."""
    context = ssl.create_default_context(cadata=cadata)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        leaf = tls.getpeercert(binary_form=True)
        assert leaf is not None
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
    return x509.load_der_x509_certificate(leaf), response


@pytest.mark.parametrize("challenge", ["http-01", "tls-alpn-01"])
def test_caddy_gets_a_certificate_from_pebble(
    pebble: Pebble, tmp_path: Path, challenge: str
) -> None:
    domain = f"{challenge}.kit-test.example.test"
    cadata = pebble.roots_pem()
    with run_caddy(caddy_config(pebble, domain, challenge), tmp_path / "caddy") as caddy:
        deadline = time.monotonic() + 90
        while True:
            try:
                leaf, response = fetch_over_tls(pebble.tls_port, domain, cadata)
                break
            except (ssl.SSLError, OSError) as error:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"no certificate for {domain}: {error}\ncaddy:\n{log_tail(caddy.log_path)}"
                        f"\npebble:\n{log_tail(pebble.log_path)}"
                    )
                time.sleep(0.2)
        log = caddy.log_path.read_text()
    assert response.startswith(b"HTTP/1.1 200")
    assert response.endswith(f"hello {domain}".encode())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [domain]
    assert "Pebble Intermediate CA" in leaf.issuer.rfc4514_string()
    # The challenge type asked for is the one Pebble validated.
    assert f'"challenge_type":"{challenge}"' in log


def test_run_caddy_reports_a_refused_configuration(tmp_path: Path) -> None:
    bad = {"apps": {"http": {"servers": {"x": {"listen": ["127.0.0.1:1"], "routes": "no"}}}}}
    with (
        pytest.raises(ServerFailed, match="caddy refused the configuration") as failed,
        run_caddy(bad, tmp_path / "caddy"),
    ):
        raise AssertionError("run_caddy should have failed to start")
    # Caddy's own reason, then its log.
    assert "routes" in str(failed.value)
    assert "admin endpoint started" in str(failed.value)


def test_run_caddy_uses_the_admin_address_given(tmp_path: Path) -> None:
    admin = f"127.0.0.1:{free_port()}"
    with run_caddy({"admin": {"listen": admin}}, tmp_path / "caddy") as caddy:
        assert caddy.admin_address == admin
        assert caddy.config()["admin"]["listen"] == admin
    assert caddy.process.returncode is not None


def test_a_server_that_exits_at_start_fails_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        admin = f"127.0.0.1:{taken.getsockname()[1]}"
        with (
            pytest.raises(ServerFailed, match="caddy exited with status 1") as failed,
            run_caddy({"admin": {"listen": admin}}, tmp_path / "caddy"),
        ):
            raise AssertionError("run_caddy should have failed to start")
    assert "address already in use" in str(failed.value)


def test_a_missing_program_is_named(tmp_path: Path) -> None:
    with (
        pytest.raises(ServerFailed, match="no-such-caddy is not installed"),
        run_caddy({}, tmp_path / "caddy", binary="no-such-caddy"),
    ):
        raise AssertionError("run_caddy should have failed to start")


def test_pebble_alternate_roots_are_all_returned(
    challtestsrv: Challtestsrv, tmp_path: Path
) -> None:
    with start_pebble(tmp_path, challtestsrv, env={"PEBBLE_ALTERNATE_ROOTS": "1"}) as other:
        roots = x509.load_pem_x509_certificates(other.roots_pem().encode())
        assert len(roots) == 2
        assert roots[0].subject != roots[1].subject
        assert other.log_path.read_text().count("Generated new root issuer") == 2
