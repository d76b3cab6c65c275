"""bench/zero_downtime: a steady stream of HTTPS requests against an app's domain while
the app is redeployed ten times and rolled back once; every failed request counts.

On this machine, with real parts only: a Kernel (SQLite, in-process jobs) with the
installed plugins (git, dockerfile, docker, caddy), Debian's Caddy managed by the panel
(``proxy:caddy``), Pebble as the ACME CA and pebble-challtestsrv as DNS (the domain's
TXT record and its A record → 127.0.0.1), the python-web fixture app served from a git
repository over HTTPS. The app gets a custom domain, verified by its TXT record, and a
certificate from Pebble; then the load starts:

- ``--rate`` requests per second (default 150), each on a new TLS connection to Caddy
  (SNI and Host: the app's domain; the chain verified against Pebble's roots), issued
  on a fixed schedule by a pool of threads, for the whole run;
- meanwhile ten redeploys (each a new commit changing app.py, built by the Dockerfile
  builder) and one rollback to the first release, one after the other.

Reported: requests sent, failed (a status other than 2xx, or a connection/TLS error),
with samples of the failures; latency percentiles; the achieved rate; for each
deployment, the time from "instances healthy" (the deployment's log) to the first
request answered by the new release; and the time each Caddy configuration change took
(``proxy:caddy``'s apply, timed around the provider's method). Target: zero failed
requests. Prints one JSON document. Usage (from the repository root):

    uv run python bench/zero_downtime/run.py [--rate 150] [--redeploys 10]

Every container, image, network and process it starts is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import re
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from litestar.testing import TestClient
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.deploy.run import FINISHED, GIT_TOKEN, write_app  # noqa: E402  (same app, git)
from gakwaya.app import create_app  # noqa: E402
from gakwaya.db.models import Deployment, JobLog  # noqa: E402
from gakwaya.kernel import Kernel  # noqa: E402
from gakwaya.plugins import settings as plugin_settings  # noqa: E402
from gakwaya.settings import Settings  # noqa: E402
from gakwaya.testing.acme import (  # noqa: E402
    Pebble,
    caddy_plugin_settings,
    start_challtestsrv,
    start_pebble,
)
from gakwaya.testing.docker import (  # noqa: E402
    BASE_ALIAS,
    ensure_base_image,
    ensure_engine,
    remove_installation,
)
from gakwaya.testing.gitserver import (  # noqa: E402
    HTTPS,
    TOKEN_USER,
    bare_repo,
    https_git_server,
    make_ca,
    push_tree,
)
from gakwaya.testing.people import create_org, create_user  # noqa: E402

DOMAIN = "shop.zero-downtime.test"
TARGET_FAILED = 0
HEALTHY_LINE = re.compile(r"^\d+ instance\(s\) healthy")
RELEASE = re.compile(rb"release=(v\d+)")


@dataclass
class Outcome:
    started: float  # time.time() when the request was sent
    latency: float
    ok: bool
    release: str = ""
    error: str = ""


class Load:
    """Requests on a fixed schedule (``rate`` per second) until stopped."""

    def __init__(self, port: int, domain: str, context: ssl.SSLContext, rate: float) -> None:
        self.port, self.domain, self.context, self.rate = port, domain, context, rate
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._schedule, name="load", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="request")

    def one(self) -> Outcome:
        started = time.time()
        t0 = time.perf_counter()
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw,
                self.context.wrap_socket(raw, server_hostname=self.domain) as tls,
            ):
                tls.sendall(
                    f"GET / HTTP/1.1\r\nHost: {self.domain}\r\nConnection: close\r\n\r\n".encode()
                )
                chunks = []
                while chunk := tls.recv(65536):
                    chunks.append(chunk)
            data = b"".join(chunks)
            status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
            found = RELEASE.search(data)
            return Outcome(
                started,
                time.perf_counter() - t0,
                200 <= status < 300,
                found.group(1).decode() if found else "",
                "" if 200 <= status < 300 else f"status {status}: {data[-200:]!r}",
            )
        except (OSError, ssl.SSLError, ValueError, IndexError) as exc:
            return Outcome(started, time.perf_counter() - t0, False, "", repr(exc))

    def _record(self, future: Any) -> None:
        with self._lock:
            self.outcomes.append(future.result())

    def _schedule(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.perf_counter()
        while not self._stop.is_set():
            self._pool.submit(self.one).add_done_callback(self._record)
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def __enter__(self) -> Load:
        self.began = time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)
        self.ended = time.time()


class Panel:
    def __init__(self, client: TestClient[Any], kernel: Kernel, headers: dict[str, str]) -> None:
        self.client, self.kernel, self.headers = client, kernel, headers
        self.api = "/api/v1"
        self.org = "/api/v1/orgs/bench"

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        r = self.client.request(method, path, headers=self.headers, **kwargs)
        if r.status_code != expect:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json()

    def deploy(self, path: str) -> dict[str, Any]:
        """Request a deployment, wait until it ends; it must succeed."""
        deployment = self.call("POST", f"{self.org}{path}", 202)
        deadline = time.monotonic() + 300
        while True:
            with self.kernel.db.session() as db:
                state = db.scalar(select(Deployment.state).where(Deployment.id == deployment["id"]))
            if state in FINISHED:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"deployment still {state}")
            time.sleep(0.05)
        body: dict[str, Any] = self.call("GET", f"{self.org}/deployments/{deployment['id']}", 200)
        if body["state"] != "succeeded":
            raise RuntimeError(f"deployment {body['state']}: {body['logs'][-15:]}")
        return body

    def healthy_at(self, deployment_id: int) -> float:
        """When the deployment's log said the new instances were healthy (epoch s)."""
        with self.kernel.db.session() as db:
            deployment = db.get(Deployment, deployment_id)
            assert deployment is not None and deployment.job_id is not None
            for created_at, line in db.execute(
                select(JobLog.created_at, JobLog.line)
                .where(JobLog.job_id == deployment.job_id)
                .order_by(JobLog.id)
            ):
                if HEALTHY_LINE.match(line):
                    return float(created_at.replace(tzinfo=dt.UTC).timestamp())
        raise RuntimeError(f"deployment {deployment_id} never logged healthy instances")


class TimedApply:
    """Times every ``apply`` of a proxy provider (wrapped on the instance)."""

    def __init__(self, proxy: Any) -> None:
        self.seconds: list[float] = []
        self._apply = proxy.apply

        def apply(**kwargs: Any) -> None:
            t0 = time.perf_counter()
            self._apply(**kwargs)
            self.seconds.append(time.perf_counter() - t0)

        proxy.apply = apply


@contextlib.contextmanager
def panel(
    work: Path, pebble: Pebble, ca_cert: Path, dns_address: str, drain: float | None
) -> Iterator[Panel]:
    settings = Settings(
        data_dir=str(work / "data"),
        database_url=f"sqlite:///{work / 'gakwaya.db'}",
        secret_key=Fernet.generate_key().decode(),
        log_level="warning",
        dns_resolver=dns_address,
        **({} if drain is None else {"deploy_drain_seconds": drain}),
    )
    kernel = Kernel.create(settings)
    try:
        kernel.migrate()
        create_user(kernel, "root@bench.example.com", superuser=True)
        org = create_org(kernel, "bench")
        with kernel.db.transaction() as db:
            plugin_settings.update(
                kernel, db, "gakwaya-git", {"ca_bundle": str(ca_cert)}, by="bench"
            )
            plugin_settings.update(
                kernel, db, "gakwaya-portproxy", {"bind_address": "127.0.0.1"}, by="bench"
            )
            plugin_settings.update(
                kernel, db, "gakwaya-caddy", caddy_plugin_settings(pebble), by="bench"
            )
        caddy = kernel.plugins.provider("proxy:caddy")
        if caddy is None:
            raise RuntimeError("gakwaya-caddy is not active")
        caddy.start(log=lambda line: None)
        try:
            with TestClient(create_app(kernel)) as client:
                p = Panel(client, kernel, org.sessions["owner"])
                try:
                    p.call("POST", f"{p.org}/projects", 201, json={"name": "shop"})
                    yield p
                finally:
                    remove_installation(kernel.installation_id)
        finally:
            caddy.stop()
    finally:
        kernel.close()


def https_context(pebble: Pebble) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=pebble.roots_pem())
    return context


def wait_for_certificate(port: int, domain: str, context: ssl.SSLContext) -> float:
    start = time.monotonic()
    deadline = start + 120
    while True:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=domain),
            ):
                return time.monotonic() - start
        except (OSError, ssl.SSLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index] * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=150, help="requests per second")
    parser.add_argument("--redeploys", type=int, default=10)
    parser.add_argument(
        "--drain",
        type=float,
        default=None,
        help="deploy_drain_seconds (default: the setting's default); 0 shows what it is for",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="work in this directory and keep it (logs)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    load_before = round(os.getloadavg()[0], 2)
    ensure_engine()
    ensure_base_image()
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gakwaya-zd-")))
        else:
            work = args.keep
            work.mkdir(parents=True, exist_ok=True)
        (work / "srv").mkdir()
        ca = make_ca(work / "ca", "gakwaya bench CA")
        with (
            start_challtestsrv(work / "dns") as dns,
            start_pebble(work / "pebble", dns=dns) as pebble,
            https_git_server(work / "srv", ca, {TOKEN_USER: GIT_TOKEN}) as git_server,
            panel(work, pebble, ca.cert, dns.dns_address, args.drain) as p,
        ):
            results = run(p, pebble, dns, git_server, work, args)
    results["load_average_1min"] = {"before": load_before, "after": round(os.getloadavg()[0], 2)}
    print(json.dumps(results, indent=2))


def run(p: Panel, pebble: Pebble, dns: Any, git_server: HTTPS, work: Path, args: Any) -> Any:
    tree = work / "tree"
    write_app(tree, f"zd-{uuid.uuid4().hex[:12]}", revision=0)
    bare = git_server.server.root / "web.git"
    bare_repo(tree, bare)
    app = p.call(
        "POST",
        f"{p.org}/apps",
        201,
        json={
            "project": "shop",
            "environment": "production",
            "name": "web",
            "git_url": git_server.url("web.git"),
            "git_credentials": {"https_token": GIT_TOKEN},
            "git_ref": "main",
            "port": 8000,
            "health": {"kind": "http", "path": "/health"},
        },
    )
    app_id = int(app["id"])
    first = p.deploy(f"/apps/{app_id}/deployments")

    domain = p.call("POST", f"{p.org}/apps/{app_id}/domains", 201, json={"name": DOMAIN})
    txt = next(r for r in domain["dns_records"] if r["type"] == "TXT")
    dns.set_txt(txt["name"], txt["value"])
    p.call("POST", f"{p.org}/domains/{domain['id']}/verify", 200)
    context = https_context(pebble)
    certificate_s = wait_for_certificate(pebble.tls_port, DOMAIN, context)

    timed = TimedApply(p.kernel.plugins.provider("proxy:caddy"))
    deployments: list[dict[str, Any]] = []
    with Load(pebble.tls_port, DOMAIN, context, args.rate) as load:
        time.sleep(2)  # steady state before the first redeploy
        for revision in range(1, args.redeploys + 1):
            write_app(tree, f"zd-{uuid.uuid4().hex[:12]}", revision=revision)
            push_tree(bare, tree, message=f"revision {revision}")
            deployments.append(p.deploy(f"/apps/{app_id}/deployments"))
        deployments.append(p.deploy(f"/releases/{first['release_id']}/rollback"))
        time.sleep(2 + float(p.kernel.settings.deploy_drain_seconds))  # the last drain

    proxy = p.kernel.plugins.provider("proxy:caddy")
    caddy_state = dict(proxy.state())
    live, _etag = proxy.admin().read()
    pairs = (
        live.get("apps", {}).get("tls", {}).get("certificates", {}).get("load_storage", {})
    ).get("pairs", [])
    preloaded = sorted(pair["certificate"].rsplit("/", 1)[-1] for pair in pairs)
    outcomes = sorted(load.outcomes, key=lambda o: o.started)
    failed = [o for o in outcomes if not o.ok]
    latencies = [o.latency for o in outcomes if o.ok]
    switch: list[dict[str, Any]] = []
    for d in deployments:
        number = p.call("GET", f"{p.org}/releases/{d['release_id']}", 200)["number"]
        release = f"v{number}"
        healthy = p.healthy_at(int(d["id"]))
        served = next(
            (o for o in outcomes if o.ok and o.started >= healthy and o.release == release),
            None,
        )
        switch.append(
            {
                "deployment": d["id"],
                "release": release,
                "healthy_to_first_request_served_s": (
                    round(served.started + served.latency - healthy, 3) if served else None
                ),
            }
        )
    duration = load.ended - load.began
    return {
        "benchmark": "zero_downtime",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "os": platform.freedesktop_os_release().get("PRETTY_NAME", platform.platform()),
            "python": platform.python_version(),
        },
        "app": "tests/fixtures/apps/python-web",
        "base_image": BASE_ALIAS,
        "deploy_drain_seconds": p.kernel.settings.deploy_drain_seconds,
        "caddy": {
            key: caddy_state[key] for key in ("version", "tcp_migrate_req") if key in caddy_state
        },
        "certificates_preloaded": preloaded,
        "certificate_issued_after_verify_s": round(certificate_s, 3),
        "load": {
            "rate_asked_per_s": args.rate,
            "duration_s": round(duration, 1),
            "sent": len(outcomes),
            "achieved_per_s": round(len(outcomes) / duration, 1),
            "failed": len(failed),
            "failure_samples": [o.error for o in failed[:10]],
            "latency_ms": {
                "p50": percentile(latencies, 50),
                "p90": percentile(latencies, 90),
                "p99": percentile(latencies, 99),
                "max": percentile(latencies, 100),
                "mean": round(statistics.fmean(latencies) * 1000, 1),
            },
        },
        "deployments": {"redeploys": args.redeploys, "rollbacks": 1, "switches": switch},
        "caddy_config_apply_s": {
            "count": len(timed.seconds),
            "median": round(statistics.median(timed.seconds), 3) if timed.seconds else None,
            "max": round(max(timed.seconds), 3) if timed.seconds else None,
        },
        "targets": {"zero_failed_requests": {"failed": len(failed), "met": not failed}},
    }


if __name__ == "__main__":
    main()
