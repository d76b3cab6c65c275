"""proxy:caddy when things go wrong: Caddy refusing a config, Caddy killed or restarted
without its routes, hand edits, concurrent writers, an operator's own config, bad
input and bad settings (refused before anything reaches Caddy)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from caddy_testlib import Upstream, admin_call, admin_get, free_port, request, wait_for

from gakwaya_caddy.plugin import CaddyProxy
from gakwaya_caddy.process import _is_caddy, running_pid
from gakwaya_caddy.settings import load
from gakwaya_sdk.providers import ProviderError, Route


def site(address: str, domain: str = "site.example.test", **kwargs: Any) -> Route:
    return Route(app="a1", domain=domain, upstreams=[address], tls=False, **kwargs)


class CloudflareDns:
    """A DNS provider plugin's answer for a Caddy module Debian's caddy lacks."""

    capability = "dns:cloudflare"

    def acme_dns_challenge(self, *, domain: str) -> Mapping[str, Any]:
        return {"provider": {"name": "cloudflare", "api_token": "token"}}


# Caddy refusing -------------------------------------------------------------------------


def test_a_refused_config_keeps_the_old_one_serving(
    caddies: Any, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    caddy = caddies.make(dns=[CloudflareDns()])
    port = caddy.settings().http_port
    caddy.apply(routes=[site(app.address)])
    before = admin_get(caddy.settings().admin_address)
    wildcard = Route(app="a2", domain="*.apps.example.test", upstreams=[app.address])
    # Passes every check of ours (a DNS provider allows wildcards); Caddy has no
    # dns.providers.cloudflare module and refuses the whole config.
    with pytest.raises(ProviderError, match=r"Caddy refused the configuration.*cloudflare") as info:
        caddy.apply(routes=[site(app.address), wildcard])
    assert "unknown module: dns.providers.cloudflare" in str(info.value)
    assert admin_get(caddy.settings().admin_address) == before
    assert request(port, "site.example.test").text == "app"
    assert caddy.routes() == [site(app.address)]


def test_a_port_caddy_cannot_listen_on_is_refused_and_the_old_port_serves(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    old_port = caddy.settings().http_port
    caddy.apply(routes=[site(app.address)])
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))  # noqa: S104 - what Caddy would bind
        holder.listen()
        caddy.values["http_port"] = holder.getsockname()[1]  # type: ignore[attr-defined]
        with pytest.raises(ProviderError, match="address already in use"):
            caddy.apply(routes=[site(app.address)])
        assert request(old_port, "site.example.test").text == "app"
    caddy.values["http_port"] = old_port  # type: ignore[attr-defined]
    assert caddy.routes() == [site(app.address)]


# Restarts ---------------------------------------------------------------------------------


def test_caddy_killed_and_started_again_resumes_its_routes(
    caddies: Any, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    caddy = caddies.make()
    port = caddy.settings().http_port
    routes = [site(app.address), site(app.address, "other.example.test", max_body_bytes=10)]
    caddy.apply(routes=routes)
    pid = running_pid(caddy.settings())
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _is_caddy(pid), "the killed Caddy to be gone")
    assert caddy.state()["running"] is False
    assert caddy.routes() == []  # nothing runs: nothing served
    new_pid = caddies.start(caddy)
    assert new_pid != pid
    # --resume: Caddy came back with its last config, before anyone applied it.
    assert caddy.routes() == sorted(routes, key=lambda r: r.domain)
    assert request(port, "site.example.test").text == "app"


def test_a_caddy_restarted_without_its_config_gets_the_routes_back_by_apply(
    caddies: Any, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    caddy = caddies.make()
    port = caddy.settings().http_port
    routes = [site(app.address)]
    caddy.apply(routes=routes)
    caddy.stop()
    assert caddy.state()["running"] is False
    (caddy.settings().data_dir / "config" / "caddy" / "autosave.json").unlink()
    caddies.start(caddy)
    assert caddy.routes() == []  # what the reconciler compares: differs, so it applies
    assert not _listens(port)  # it started with its admin API only
    caddy.apply(routes=routes)
    assert caddy.routes() == routes
    assert request(port, "site.example.test").text == "app"


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_start_is_idempotent_and_stop_stops_only_its_own(
    caddies: Any, upstreams: Callable[[str], Upstream]
) -> None:
    caddy = caddies.make()
    state = caddy.state()
    assert state["running"] is True and state["managed"] is True
    assert state["admin"] == caddy.settings().admin_address
    assert state["version"].startswith("v2.") or state["version"].startswith("2.")
    pid = state["pid"]
    caddies.start(caddy)  # already running: nothing
    assert caddy.state()["pid"] == pid
    caddy.stop()
    assert caddy.state() | {"version": ""} == {
        "running": False,
        "admin": caddy.settings().admin_address,
        "managed": True,
        "pid": None,
        "version": "",
        "log": str(caddy.settings().data_dir / "caddy.log"),
        # Turned on by start (the tests run as root, as the panel does).
        "tcp_migrate_req": True,
    }
    caddy.stop()  # none runs: nothing


def test_a_caddy_that_cannot_start_is_reported_with_its_log(caddies: Any, tmp_path: Path) -> None:
    fake = tmp_path / "not-caddy"
    fake.write_text("#!/bin/sh\necho 'this is not caddy' >&2\nexit 3\n")
    fake.chmod(0o755)
    caddy = caddies.make({"caddy_binary": str(fake)}, start=False)
    with pytest.raises(ProviderError, match=r"exited with status 3(.|\n)*this is not caddy"):
        caddy.start(log=lambda line: None)
    missing = caddies.make({"caddy_binary": "no-such-caddy"}, start=False, name="other")
    with pytest.raises(ProviderError, match=r"setting caddy_binary: 'no-such-caddy'.*apt-get"):
        missing.start(log=lambda line: None)


def test_an_unmanaged_caddy_is_not_started_or_stopped(caddies: Any) -> None:
    caddy = caddies.make({"managed": False}, start=False)
    with pytest.raises(ProviderError, match="setting managed is false"):
        caddy.start(log=lambda line: None)
    with pytest.raises(ProviderError, match="setting managed is false"):
        caddy.stop()
    assert caddy.state()["running"] is False


# Other writers --------------------------------------------------------------------------


def test_hand_edits_make_the_route_differ_and_apply_restores_it(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    app, other = upstreams("app"), upstreams("other")
    admin = caddy.settings().admin_address
    port = caddy.settings().http_port
    routes = [site(app.address, health_path="/healthz"), site(app.address, "b.example.test")]
    caddy.apply(routes=routes)
    servers = admin_get(admin, "/config/apps/http/servers/gakwaya_http/routes")
    index = next(
        i for i, r in enumerate(servers) if r["@id"] == "gakwaya:plain:a1:site.example.test"
    )
    r = admin_call(
        admin,
        "PATCH",
        f"/config/apps/http/servers/gakwaya_http/routes/{index}/handle/0/upstreams",
        [{"dial": other.address}],
    )
    assert r.status_code == 200, r.text
    assert request(port, "site.example.test").text == "other"
    assert caddy.routes() != routes  # the edited route no longer matches
    caddy.apply(routes=routes)
    assert caddy.routes() == sorted(routes, key=lambda r: r.domain)
    assert request(port, "site.example.test").text == "app"

    # A shared part of ours removed (the TLS log): every route is reported missing.
    r = admin_call(admin, "DELETE", "/config/logging/logs/gakwaya_tls")
    assert r.status_code == 200, r.text
    assert caddy.routes() == []
    caddy.apply(routes=routes)
    assert caddy.routes() == sorted(routes, key=lambda r: r.domain)


def test_an_operators_own_config_is_left_alone(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    app, theirs = upstreams("app"), upstreams("theirs")
    admin = caddy.settings().admin_address
    their_port = free_port()
    their_server = {
        "listen": [f"127.0.0.1:{their_port}"],
        "automatic_https": {"disable": True},
        "routes": [
            {"handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": theirs.address}]}]}
        ],
    }
    their_policy = {"subjects": ["theirs.example.test"], "issuers": [{"module": "internal"}]}
    r = admin_call(admin, "POST", "/config/apps", {"http": {"servers": {"mine": their_server}}})
    assert r.status_code == 200, r.text
    r = admin_call(admin, "POST", "/config/apps/tls", {"automation": {"policies": [their_policy]}})
    assert r.status_code == 200, r.text
    caddy.apply(
        routes=[Route(app="a1", domain="site.example.test", upstreams=[app.address], tls=True)]
    )
    config = admin_get(admin)
    assert config["apps"]["http"]["servers"]["mine"] == their_server
    policies = config["apps"]["tls"]["automation"]["policies"]
    assert policies[-1] == their_policy and policies[0]["@id"] == "gakwaya_policy"
    assert request(their_port, "anything").text == "theirs"
    caddy.apply(routes=[])
    config = admin_get(admin)
    assert set(config["apps"]["http"]["servers"]) == {"mine"}
    assert config["apps"]["tls"]["automation"]["policies"] == [their_policy]
    assert request(their_port, "anything").text == "theirs"


def test_a_concurrent_change_is_not_overwritten(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    app, theirs = upstreams("app"), upstreams("theirs")
    settings = caddy.settings()
    admin = caddy.admin()
    caddy.apply(routes=[site(app.address)])
    live, etag = admin.read()
    # Someone else changes the config after we read it…
    their_port = free_port()
    their_server = {
        "listen": [f"127.0.0.1:{their_port}"],
        "automatic_https": {"disable": True},
        "routes": [
            {"handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": theirs.address}]}]}
        ],
    }
    r = admin_call(settings.admin_address, "PUT", "/config/apps/http/servers/mine", their_server)
    assert r.status_code == 200, r.text
    # …so a write based on what we read is refused (412) and changes nothing…
    assert admin.replace(live, etag) is False
    assert "mine" in admin_get(settings.admin_address)["apps"]["http"]["servers"]
    # …and apply reads again: their change stays, ours is made.
    caddy.apply(routes=[site(app.address, "new.example.test")])
    assert "mine" in admin_get(settings.admin_address)["apps"]["http"]["servers"]
    assert request(their_port, "x").text == "theirs"
    assert request(settings.http_port, "new.example.test").text == "app"


# Bad input ------------------------------------------------------------------------------

PAYLOADS = [
    "a;touch /tmp/pwned",
    "$(touch /tmp/pwned)",
    "`id`",
    "../../etc/passwd",
    "-rf",
    "a\nb",
    "a b",
    "{http.request.uri}",
    '"quoted"',
]


def _bad_routes(good: str) -> list[tuple[str, Route]]:
    out: list[tuple[str, Route]] = []
    for payload in PAYLOADS:
        if payload.startswith("-"):  # a leading dash, where it leads
            out.append(("domain", site(good, domain=f"{payload}.example.test")))
            out.append(("redirect_from", site(good, redirect_from=[f"{payload}.example.test"])))
            out.append(("upstream", site(f"{payload}:80")))
            out.append(("health_path", site(good, health_path=payload)))
            continue
        out.append(("domain", site(good, domain=payload)))
        out.append(("domain", site(good, domain=f"x{payload}.example.test")))
        out.append(("redirect_from", site(good, redirect_from=[f"www{payload}.example.test"])))
        out.append(("upstream", site(f"{payload}:80")))
        out.append(("upstream", site(f"127.0.0.1:80{payload}")))
        out.append(("health_path", site(good, health_path=f"/{payload}")))
    out += [
        ("health_path", site(good, health_path="healthz")),
        ("health_path", site(good, health_path="/a/../b")),
        ("health_path", site(good, health_path="/%zz")),
        ("domain", site(good, domain="*.example.test")),  # no DNS provider: no wildcard
        ("domain", site(good, domain="Site.Example.Test")),  # not the canonical form
        ("domain", site(good, domain="127.0.0.1")),
        ("upstream", site("[::1]:0")),
        ("upstream", site("[zz::1]:80")),
        ("upstream", site("[fe80::1%eth0]:80")),
        ("upstream", site("::1:80")),
        ("upstream", site("127.0.0.1:0")),
        ("upstream", site("999.1.1.1:80")),
        ("max_body_bytes", site(good, max_body_bytes=0)),
        ("timeout", site(good, timeout=-1.0)),
        ("health_interval", site(good, health_interval=float("nan"))),
        ("port", Route(app="a1", domain="p.example.test", port=20001, upstreams=[good])),
        ("app", Route(app="a;1", domain="p.example.test", upstreams=[good])),
        ("redirect_from", site(good, redirect_from=["site.example.test"])),
    ]
    return out


def test_injection_and_bad_values_are_refused_before_reaching_caddy(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    good = site(app.address, domain="good.example.test")
    caddy.apply(routes=[good])
    admin = caddy.admin()
    before = admin.read()
    for field, bad in _bad_routes(app.address):
        with pytest.raises(ProviderError) as info:
            caddy.apply(routes=[good, bad])
        message = str(info.value)
        assert f"route of app {bad.app!r}" in message, (field, message)
        assert field in message or (field == "port" and "never both" in message), (field, message)
        assert admin.read() == before, (field, bad)
    # Two routes claiming one host.
    with pytest.raises(ProviderError, match="already routed"):
        caddy.apply(routes=[good, site(app.address, redirect_from=["good.example.test"])])
    assert admin.read() == before
    assert request(caddy.settings().http_port, "good.example.test").text == "app"


def test_wildcards_are_allowed_only_with_a_dns_provider(
    caddies: Any, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    wildcard = Route(app="a2", domain="*.apps.example.test", upstreams=[app.address])
    without = caddies.make(start=False)
    with pytest.raises(ProviderError, match="needs a DNS provider"):
        without.apply(routes=[wildcard])
    # With one, the config carries its DNS-01 challenge (here refused by Caddy, which
    # lacks the module: see test_a_refused_config_keeps_the_old_one_serving).
    from gakwaya_caddy.config import build, domain_routes

    dns = CloudflareDns()
    settings = caddies.make(start=False, name="other").settings()
    routes = domain_routes([wildcard], dns_challenge=lambda d: dns.acme_dns_challenge(domain=d))
    parts = build(routes, settings, dns_challenge=lambda d: dns.acme_dns_challenge(domain=d))
    [policy] = parts.policies
    assert policy["subjects"] == ["*.apps.example.test"]
    assert policy["issuers"][0]["challenges"] == {"dns": dns.acme_dns_challenge(domain="")}


# Settings ---------------------------------------------------------------------------------

BAD_SETTINGS = [
    ("admin_address", "0.0.0.0:2019"),
    ("admin_address", "10.0.0.1:2019"),
    ("admin_address", "192.0.2.2:2019"),
    ("admin_address", "example.com:2019"),
    ("admin_address", "127.0.0.1"),
    ("admin_address", "127.0.0.1:0"),
    ("admin_address", "127.0.0.1:2019;id"),
    ("admin_address", "$(id):2019"),
    ("admin_address", "::1:2019"),
    ("admin_address", "unix//run/caddy.sock"),
    ("admin_address", 2019),
    ("acme_ca", "http://ca.example.test/dir"),
    ("acme_ca", "ftp://ca.example.test/dir"),
    ("acme_ca", "https://user@ca.example.test/dir"),
    ("acme_ca", "https://ca.example.test/dir?x=1"),
    ("acme_ca", "https://ca.example.test/$(id)"),
    ("acme_ca", "https://ca.example.test/dir\n"),
    ("acme_ca", "https://ca;id/dir"),
    ("acme_ca", "letsencrypt-production"),
    ("acme_ca", ""),
    ("acme_email", "not an email"),
    ("acme_email", "a@b;id"),
    ("acme_trusted_roots", "relative/roots.pem"),
    ("acme_trusted_roots", "/no/such/roots.pem"),
    ("storage_dir", "storage"),
    ("storage_dir", "/var/lib/../etc"),
    ("caddy_binary", "-caddy"),
    ("caddy_binary", "caddy;id"),
    ("caddy_binary", "../caddy"),
    ("http_port", 0),
    ("http_port", 70000),
    ("http_port", "80"),
    ("https_port", True),
    ("on_demand_tls", "yes"),
    ("managed", 1),
    ("on_demand_ask_url", "javascript:alert(1)"),
    ("on_demand_ask_url", "http://127.0.0.1:8000/ask?x=$(id)"),
]


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_bad_settings_are_refused_naming_the_setting(
    name: str, value: object, tmp_path: Path
) -> None:
    with pytest.raises(ProviderError, match=rf"^setting {name}: "):
        load({name: value}, tmp_path)


def test_a_bad_setting_changes_nothing_in_a_running_caddy(
    caddy: CaddyProxy, upstreams: Callable[[str], Upstream]
) -> None:
    app = upstreams("app")
    caddy.apply(routes=[site(app.address)])
    before = caddy.admin().read()
    values = caddy.values  # type: ignore[attr-defined]
    good = dict(values)
    values["acme_ca"] = "http://insecure.example.test/dir"
    with pytest.raises(ProviderError, match="setting acme_ca"):
        caddy.apply(routes=[site(app.address, "new.example.test")])
    values.update(good)
    assert caddy.admin().read() == before
    values["admin_address"] = "0.0.0.0:2019"
    try:
        for call in (caddy.routes, caddy.state, lambda: caddy.apply(routes=[])):
            with pytest.raises(
                ProviderError, match=re.escape("setting admin_address: '0.0.0.0:2019' must be")
            ):
                call()
    finally:
        values.update(good)
    assert caddy.admin().read() == before


def test_same_ports_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="setting https_port: 8080 must differ from http_port"):
        load({"http_port": 8080, "https_port": 8080}, tmp_path)
    with pytest.raises(ProviderError, match="setting admin_address"):
        load({"admin_address": "127.0.0.1:8080", "http_port": 8080}, tmp_path)


def test_good_settings(tmp_path: Path) -> None:
    s = load({}, tmp_path)
    assert (s.admin_address, s.http_port, s.https_port) == ("127.0.0.1:2019", 80, 443)
    assert s.acme_ca == "https://acme-v02.api.letsencrypt.org/directory"
    assert s.storage_dir == tmp_path / "storage" and not s.storage_explicit
    s = load(
        {
            "admin_address": "[::1]:2020",
            "acme_ca": "letsencrypt-staging",
            "acme_email": "ops@example.com",
            "storage_dir": "/var/lib/caddy-storage",
        },
        tmp_path,
    )
    assert s.admin_address == "[::1]:2020"
    assert s.acme_ca == "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert s.storage_dir == Path("/var/lib/caddy-storage") and s.storage_explicit
    for url in (
        "https://acme.zerossl.com/v2/DV90",
        "https://ca.internal.example:9000/acme/acme/directory",
        "https://127.0.0.1:14000/dir",
    ):
        assert load({"acme_ca": url}, tmp_path).acme_ca == url
    assert load({"admin_address": "localhost:2019"}, tmp_path).admin_address == "localhost:2019"


def test_the_managed_caddy_does_not_see_the_panels_environment(
    caddies: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAKWAYA_SECRET_KEY", "do-not-leak")
    caddy = caddies.make()
    pid = running_pid(caddy.settings())
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not [e for e in environ if e.startswith(b"GAKWAYA_")]
    assert f"XDG_CONFIG_HOME={caddy.settings().data_dir / 'config'}".encode() in environ
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[1:5] == [
        b"run",
        b"--resume",
        b"--config",
        str(caddy.settings().data_dir / "initial.json").encode(),
    ]
    assert json.loads((caddy.settings().data_dir / "initial.json").read_text()) == {
        "admin": {"listen": caddy.settings().admin_address}
    }
    assert re.fullmatch(r"\d+\n", (caddy.settings().data_dir / "caddy.pid").read_text())


def test_an_existing_caddy_is_used_and_keeps_its_storage(
    tmp_path: Path, upstreams: Callable[[str], Upstream]
) -> None:
    from gakwaya.testing.acme import run_caddy

    app, theirs = upstreams("app"), upstreams("theirs")
    their_port = free_port()
    their_storage = {"module": "file_system", "root": str(tmp_path / "their-storage")}
    their_config = {
        "storage": their_storage,
        "apps": {
            "http": {
                "servers": {
                    "site": {
                        "listen": [f"127.0.0.1:{their_port}"],
                        "automatic_https": {"disable": True},
                        "routes": [
                            {
                                "handle": [
                                    {
                                        "handler": "reverse_proxy",
                                        "upstreams": [{"dial": theirs.address}],
                                    }
                                ]
                            }
                        ],
                    }
                }
            }
        },
    }
    with run_caddy(their_config, tmp_path / "existing") as existing:
        values = {
            "managed": False,
            "admin_address": existing.admin_address,
            "http_port": free_port(),
            "https_port": free_port(),
            "acme_ca": f"https://127.0.0.1:{free_port()}/dir",
        }
        proxy = CaddyProxy(settings=values, data_dir=tmp_path / "plugin")
        assert proxy.state()["running"] is True and proxy.state()["pid"] is None
        route = site(app.address)
        proxy.apply(routes=[route])
        assert proxy.routes() == [route]
        config = existing.config()
        assert config["storage"] == their_storage
        assert (
            config["apps"]["http"]["servers"]["site"]
            == their_config["apps"]["http"]["servers"]["site"]
        )  # type: ignore[index]
        assert request(values["http_port"], "site.example.test").text == "app"  # type: ignore[arg-type]
        assert request(their_port, "x").text == "theirs"
        with pytest.raises(ProviderError, match="managed is false"):
            proxy.stop()
        assert existing.process.poll() is None
        # certs:acme reads the storage that Caddy uses.
        from gakwaya_caddy.plugin import AcmeCertificates

        certs = AcmeCertificates(settings=values, data_dir=tmp_path / "plugin")
        assert certs.status(domains=["site.example.test"])[0].state == "pending"
        from gakwaya.testing.tls import make_ca

        ca = make_ca(tmp_path / "ca")
        stored = tmp_path / "their-storage/certificates/ca.example-dir/site.example.test"
        stored.mkdir(parents=True)
        (stored / "site.example.test.crt").write_bytes(ca.server_cert.read_bytes())
        [status] = certs.status(domains=["site.example.test"])
        assert status.state == "issued" and status.not_after is not None
        assert "gakwaya test CA" in status.issuer
        values["storage_dir"] = str(tmp_path / "ours")
        proxy.apply(routes=[route])
        assert existing.config()["storage"] == {
            "module": "file_system",
            "root": str(tmp_path / "ours"),
        }
