"""The domain settings: a bad value stops start-up with one line naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from gakwaya.settings import SettingsError, load_settings


def _load(tmp_path: Path, **values: str):
    env = {"GAKWAYA_DATA_DIR": str(tmp_path)}
    env.update({f"GAKWAYA_{k.upper()}": v for k, v in values.items()})
    return load_settings(env)


def test_defaults_and_normalised_values(tmp_path):
    s = _load(tmp_path)
    assert (s.proxy_base_domain, s.panel_domain, s.server_ipv4, s.server_ipv6) == ("", "", "", "")
    assert s.dns_address is None and s.domains_tls is True
    s = _load(
        tmp_path,
        proxy_base_domain="Apps.Example.COM.",
        panel_domain="Panel.Bücher.example",
        server_ipv4="203.0.113.5",
        server_ipv6="2001:db8::5",
        domains_tls="false",
    )
    assert s.proxy_base_domain == "apps.example.com"
    assert s.panel_domain == "panel.xn--bcher-kva.example"
    assert s.domains_tls is False


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:8053", ("127.0.0.1", 8053)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::1]", ("2001:db8::1", 53)),
    ],
)
def test_dns_resolver(tmp_path, value, address):
    assert _load(tmp_path, dns_resolver=value).dns_address == address


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("proxy_base_domain", "apps;example.com"),
        ("proxy_base_domain", "*.example.com"),
        ("proxy_base_domain", "localhost"),
        ("panel_domain", "panel.example.com/admin"),
        ("panel_domain", "127.0.0.1"),
        ("server_ipv4", "2001:db8::1"),
        ("server_ipv4", "example.com"),
        ("server_ipv6", "203.0.113.5"),
        ("dns_resolver", "dns.example.com"),
        ("dns_resolver", "127.0.0.1:99999"),
        ("dns_resolver", "127.0.0.1:x"),
        ("dns_resolver", "[::1"),
        ("domains_tls", "maybe"),
    ],
)
def test_bad_values_name_the_setting(tmp_path, name, value):
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, **{name: value})
    message = str(caught.value)
    assert name in message.lower() and "\n" not in message.strip(), message
