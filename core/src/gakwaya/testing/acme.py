"""A real ACME certificate authority on loopback for tests: Pebble, its DNS, and Caddy.

Let's Encrypt's test servers, as Debian 12 ships them (package ``pebble`` 2.4.0):

- :func:`start_challtestsrv`: ``pebble-challtestsrv`` with only its DNS server and its
  management API. Every name resolves to ``127.0.0.1`` (A), none has an AAAA record,
  so whatever resolves through it (Pebble's validation, the domains package's TXT
  check) lands on loopback. TXT and A records are set through :class:`Challtestsrv`.
- :func:`start_pebble`: the ACME server, its HTTPS listener signed by a CA made here
  (:mod:`gakwaya.testing.tls`), resolving names with a challtestsrv, validating at full
  speed (no random sleeps, no rejected nonces, no authorization reuse).
- :func:`run_caddy`: Debian's ``caddy`` (2.6.2) with a JSON configuration, so a test
  can prove a real issuance end to end: Caddy listening on Pebble's ``http_port`` and
  ``tls_port`` answers its HTTP-01 or TLS-ALPN-01 challenges.

The ``challtestsrv`` and ``pebble`` session fixtures of
:mod:`gakwaya.testing.pytest_plugin` wrap the first two. Processes get argument lists,
log to a file in their directory, and are stopped when the context exits; a start-up
failure raises with the tail of that log.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query

from gakwaya.testing.ports import free_port
from gakwaya.testing.tls import make_ca

CHALLTESTSRV_PROGRAM = "pebble-challtestsrv"
PEBBLE_PROGRAM = "pebble"
CADDY_PROGRAM = "caddy"
#: How long a server may take to answer after it is started.
START_TIMEOUT = 30.0
#: Pebble's environment knobs set by :func:`start_pebble` (2.4.0 reads them at start):
#: validate at once instead of after 0-15 s, never reject a good nonce (5 % by default),
#: never reuse a valid authorization (50 % by default), so every order is validated.
PEBBLE_ENV = {
    "PEBBLE_VA_NOSLEEP": "1",
    "PEBBLE_WFE_NONCEREJECT": "0",
    "PEBBLE_AUTHZREUSE": "0",
}


#: What a readiness probe raises while a server is still starting: refused or reset
#: connections, timeouts (DNS's too), half-written answers.
NOT_YET = (OSError, ValueError, http.client.HTTPException, dns.exception.DNSException)


class ServerFailed(RuntimeError):
    """A test server did not start; the message ends with the tail of its log."""


# Plumbing --------------------------------------------------------------------------------


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a server's log, for failure messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _wait(proc: subprocess.Popen[bytes], log: Path, what: str, ready: Callable[[], bool]) -> None:
    """Until ``ready()`` (which should give up within a couple of seconds) is true;
    :class:`ServerFailed` with the log's tail when the process exits or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with contextlib.suppress(*NOT_YET):  # not answering yet: look again
            if ready():
                return
        if proc.poll() is not None:
            raise ServerFailed(f"{what} exited with status {proc.returncode}:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            raise ServerFailed(
                f"{what} did not answer within {START_TIMEOUT:.0f}s:\n{log_tail(log)}"
            )
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _spawn(
    args: list[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    if shutil.which(args[0]) is None:
        raise ServerFailed(
            f"{args[0]} is not installed: apt-get install pebble caddy (scripts/test installs them)"
        )
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=log.parent,
        )


def _fqdn(name: str) -> str:
    return name.rstrip(".") + "."


def http_call(
    method: str,
    url: str,
    body: Any = None,
    *,
    context: ssl.SSLContext | None = None,
    timeout: float = 30,
) -> tuple[int, bytes]:
    """One HTTP(S) request to a test server on loopback, ``body`` sent as JSON:
    (status, response body), error statuses included rather than raised."""
    if not url.startswith(("http://127.0.0.1:", "https://127.0.0.1:")):
        raise ValueError(f"not a loopback URL: {url!r}")
    request = urllib.request.Request(  # noqa: S310 - loopback http(s), checked above
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


# challtestsrv ----------------------------------------------------------------------------


@dataclass
class Challtestsrv:
    """A running ``pebble-challtestsrv``: its DNS server and management API.

    Names are given without the trailing dot (``_acme-challenge.example.test``); the
    management API wants fully qualified ones, added here."""

    #: ``127.0.0.1:<port>``, UDP and TCP: give it to Pebble (``-dnsserver``) and to
    #: resolvers under test (the panel's ``dns_resolver`` setting).
    dns_address: str
    #: ``http://127.0.0.1:<port>``: the management API.
    management_url: str
    log_path: Path

    @property
    def dns_host(self) -> str:
        return self.dns_address.rsplit(":", 1)[0]

    @property
    def dns_port(self) -> int:
        return int(self.dns_address.rsplit(":", 1)[1])

    def _post(self, path: str, body: Mapping[str, Any]) -> None:
        status, answer = http_call("POST", self.management_url + path, body, timeout=10)
        if status != 200:
            raise RuntimeError(f"challtestsrv {path} answered {status}: {answer!r}")

    def set_txt(self, name: str, value: str) -> None:
        """Make ``name`` answer exactly one TXT record, ``value`` (replacing any)."""
        self.clear_txt(name)
        self.add_txt(name, value)

    def add_txt(self, name: str, value: str) -> None:
        """Add a TXT value to ``name``'s (e.g. a wildcard's and its apex's DNS-01
        tokens, which share ``_acme-challenge.<apex>``)."""
        self._post("/set-txt", {"host": _fqdn(name), "value": value})

    def clear_txt(self, name: str) -> None:
        """Remove every TXT record of ``name``."""
        self._post("/clear-txt", {"host": _fqdn(name)})

    def set_a(self, name: str, *addresses: str) -> None:
        """Make ``name`` answer these A records instead of the default 127.0.0.1."""
        self._post("/add-a", {"host": _fqdn(name), "addresses": list(addresses)})

    def clear_a(self, name: str) -> None:
        """Back to the default A record (127.0.0.1) for ``name``."""
        self._post("/clear-a", {"host": _fqdn(name)})


def _dns_answers(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    query = dns.message.make_query("ready.gakwaya.test.", "A")
    dns.query.udp(query, host, port=int(port), timeout=0.5)
    return True


@contextmanager
def start_challtestsrv(directory: Path, *, attempts: int = 3) -> Iterator[Challtestsrv]:
    """Run ``pebble-challtestsrv`` on free loopback ports with DNS and management only
    (its HTTP-01, HTTPS and TLS-ALPN-01 responders are off: the proxy under test
    answers challenges). A 127.0.0.1 for every name, no AAAA. Log:
    ``directory/challtestsrv.log``."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "challtestsrv.log"
    for attempt in range(attempts):
        dns_address = f"127.0.0.1:{free_port(udp=True)}"
        management_port = free_port()
        management = f"127.0.0.1:{management_port}"
        proc = _spawn(
            [
                CHALLTESTSRV_PROGRAM,
                "-dns01",
                dns_address,
                "-management",
                management,
                "-http01=",
                "-https01=",
                "-tlsalpn01=",
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6=",
            ],
            log,
        )
        try:
            server = Challtestsrv(
                dns_address=dns_address, management_url=f"http://{management}", log_path=log
            )

            def ready(
                server: Challtestsrv = server, management_port: int = management_port
            ) -> bool:
                socket.create_connection(("127.0.0.1", management_port), timeout=1).close()
                return _dns_answers(server.dns_address)

            try:
                _wait(proc, log, "pebble-challtestsrv", ready)
            except ServerFailed:
                if attempt + 1 < attempts and proc.poll() is not None:
                    continue  # a port was taken in the meantime: try others
                raise
            yield server
            return
        finally:
            _stop(proc)
    raise AssertionError("unreachable")  # pragma: no cover


# Pebble ----------------------------------------------------------------------------------


@dataclass
class Pebble:
    """A running Pebble ACME server."""

    #: ``https://127.0.0.1:<port>/dir``: the ACME directory (Caddy's issuer ``ca``).
    directory_url: str
    #: PEM file of the CA that signed Pebble's own HTTPS certificate (for
    #: ``127.0.0.1`` and ``localhost``): the ACME client's trusted roots (Caddy's
    #: ``trusted_roots_pem_files``). Not what signs the issued certificates.
    listener_ca_path: Path
    #: Where Pebble's validation connects for HTTP-01 (plain HTTP) and TLS-ALPN-01:
    #: the proxy under test must listen on these (Caddy's ``http_port``/``https_port``).
    http_port: int
    tls_port: int
    #: ``https://127.0.0.1:<port>``: roots, intermediates, revocation status.
    management_url: str
    #: The challtestsrv Pebble resolves names with.
    dns: Challtestsrv
    log_path: Path

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting Pebble's listener CA only."""
        return ssl.create_default_context(cafile=str(self.listener_ca_path))

    def _get(self, path: str) -> str | None:
        status, body = http_call(
            "GET", self.management_url + path, context=self.ssl_context(), timeout=10
        )
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"pebble {path} answered {status}: {body!r}")
        return body.decode()

    def _numbered(self, kind: str) -> str:
        found = []
        for index in range(16):
            pem = self._get(f"/{kind}/{index}")
            if pem is None:
                break
            found.append(pem.strip() + "\n")
        return "".join(found)

    def roots_pem(self) -> str:
        """PEM of the root(s) the issued certificates chain to (``/roots/0`` and any
        alternate roots). Pebble makes new ones at every start: fetch, never cache
        across sessions. Give it to a client checking a served chain (``cadata=``)."""
        return self._numbered("roots")

    def intermediates_pem(self) -> str:
        """PEM of the intermediate(s) (``/intermediates/N``). A server sends its
        intermediate in the chain, so clients rarely need this."""
        return self._numbered("intermediates")


def _directory_answers(url: str, context: ssl.SSLContext) -> bool:
    status, body = http_call("GET", url, context=context, timeout=2)
    return status == 200 and bool(json.loads(body).get("newOrder"))


@contextmanager
def start_pebble(
    directory: Path,
    dns: Challtestsrv,
    *,
    env: Mapping[str, str] | None = None,
    attempts: int = 3,
) -> Iterator[Pebble]:
    """Run Pebble on free loopback ports, resolving with ``dns``; ``env`` adds to (or
    overrides) :data:`PEBBLE_ENV` (e.g. ``PEBBLE_ALTERNATE_ROOTS``). Its listener CA,
    configuration and log (``pebble.log``) are written under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(directory / "listener", name="gakwaya test Pebble listener CA")
    log = directory / "pebble.log"
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
    process_env.update(PEBBLE_ENV)
    process_env.update(env or {})
    for attempt in range(attempts):
        listen, management = free_port(), free_port()
        http_port, tls_port = free_port(), free_port()
        config = directory / "pebble-config.json"
        config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"127.0.0.1:{listen}",
                        "managementListenAddress": f"127.0.0.1:{management}",
                        "certificate": str(ca.server_cert),
                        "privateKey": str(ca.server_key),
                        "httpPort": http_port,
                        "tlsPort": tls_port,
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                    }
                },
                indent=2,
            )
        )
        proc = _spawn(
            [
                PEBBLE_PROGRAM,
                "-config",
                str(config),
                "-dnsserver",
                dns.dns_address,
                "-strict=false",
            ],
            log,
            process_env,
        )
        try:
            server = Pebble(
                directory_url=f"https://127.0.0.1:{listen}/dir",
                listener_ca_path=ca.cert,
                http_port=http_port,
                tls_port=tls_port,
                management_url=f"https://127.0.0.1:{management}",
                dns=dns,
                log_path=log,
            )
            context = server.ssl_context()

            def ready(server: Pebble = server, context: ssl.SSLContext = context) -> bool:
                if not _directory_answers(server.directory_url, context):
                    return False
                return server._get("/roots/0") is not None

            try:
                _wait(proc, log, "pebble", ready)
            except ServerFailed:
                if attempt + 1 < attempts and proc.poll() is not None:
                    continue
                raise
            yield server
            return
        finally:
            _stop(proc)
    raise AssertionError("unreachable")  # pragma: no cover


# Caddy -----------------------------------------------------------------------------------


@dataclass
class RunningCaddy:
    """A ``caddy run`` started by :func:`run_caddy`."""

    #: ``127.0.0.1:<port>``: Caddy's admin API.
    admin_address: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin_address}"

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 30
    ) -> tuple[int, bytes]:
        """A call to the admin API: (status, body), errors included."""
        return http_call(method, self.admin_url + path, body, timeout=timeout)

    def load(self, config: Mapping[str, Any]) -> None:
        """Replace the running configuration (``POST /load``, which returns once the
        apps have started: ports bound, certificate management begun, not finished)."""
        status, body = self.request("POST", "/load", config)
        if status != 200:
            raise ServerFailed(
                f"caddy refused the configuration ({status}): {body.decode(errors='replace')}"
                f"\n{log_tail(self.log_path)}"
            )

    def config(self) -> Any:
        status, body = self.request("GET", "/config/")
        assert status == 200, body
        return json.loads(body)


@contextmanager
def run_caddy(
    config: Mapping[str, Any], workdir: Path, *, binary: str = CADDY_PROGRAM
) -> Iterator[RunningCaddy]:
    """Run Caddy with a JSON configuration until the context exits.

    Its admin API listens on ``config["admin"]["listen"]``, or on a free loopback port
    written there when absent; ``admin.config.persist`` is turned off. Caddy starts with
    only that admin section, then the whole ``config`` goes through ``POST /load`` so
    a refused configuration raises :class:`ServerFailed` with Caddy's reason. Its
    ``HOME``/``XDG_*`` directories (default storage ``data/caddy``) and its log
    (``caddy.log``) are under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    full = copy.deepcopy(dict(config))
    admin = dict(full.get("admin") or {})
    admin.setdefault("listen", f"127.0.0.1:{free_port()}")
    admin["config"] = {**dict(admin.get("config") or {}), "persist": False}
    full["admin"] = admin
    (workdir / "caddy.json").write_text(json.dumps(full, indent=2))
    boot = workdir / "caddy-boot.json"
    boot.write_text(json.dumps({"admin": admin}))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir / "home"),
        "XDG_DATA_HOME": str(workdir / "data"),
        "XDG_CONFIG_HOME": str(workdir / "config"),
    }
    log = workdir / "caddy.log"
    proc = _spawn([binary, "run", "--config", str(boot)], log, env)
    with ExitStack() as stack:
        stack.callback(_stop, proc)
        caddy = RunningCaddy(admin_address=str(admin["listen"]), log_path=log, process=proc)
        _wait(proc, log, "caddy", lambda: caddy.request("GET", "/config/", timeout=2)[0] == 200)
        caddy.load(full)
        yield caddy


__all__ = [
    "PEBBLE_ENV",
    "Challtestsrv",
    "Pebble",
    "RunningCaddy",
    "ServerFailed",
    "free_port",
    "http_call",
    "log_tail",
    "run_caddy",
    "start_challtestsrv",
    "start_pebble",
]


def caddy_plugin_settings(pebble: Pebble) -> dict[str, Any]:
    """``gakwaya-caddy``'s settings for a Caddy whose certificates come from ``pebble``:
    its directory and listener CA, and Pebble's validation ports as Caddy's HTTP and
    HTTPS ports; the admin API on a free loopback port."""
    return {
        "admin_address": f"127.0.0.1:{free_port()}",
        "http_port": pebble.http_port,
        "https_port": pebble.tls_port,
        "acme_ca": pebble.directory_url,
        "acme_trusted_roots": str(pebble.listener_ca_path),
    }
