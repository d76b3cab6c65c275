"""bench/webui: how long the dashboard takes to render each main page, server side,
for an organization of 1,000 apps.

The issue's bar is "every page renders server-side in under 100 ms p95 with 1,000
apps in the database". This builds a real kernel (SQLite in a temporary directory by
default, or a throwaway PostgreSQL), seeds one organization the size a team with
1,000 apps has (projects and environments, variables, domains, deployments and
releases, members, invitations, API keys, audit rows) directly through the models
and the kernel's services (no container runs), signs in as the owner through the
login form, then requests every main dashboard page N times (the pages of
tests/browser/test_main_pages.py, plus the overview's second page of apps and the
overview filtered to one project's environment), one request at a time.

A page's time is the time the ASGI app takes to produce the whole response, in
process (``litestar.testing.AsyncTestClient``, which runs the app on its own event
loop in a thread of this process): everything the server does, including the
in-process API calls the dashboard makes and the template, without a network or a
browser. The plugins' background services and the
job runner are not started (``create_app(background=False)``), so nothing else
competes with the pages for the CPU and no container is started for the seeded apps.
Pages are requested in turn, round robin, so that load from other processes on a
shared machine falls on all of them alike; besides the wall-clock times, each
page's CPU time (``time.process_time``, every thread of this process) is reported,
which such load barely changes.

Prints one JSON document. Usage (from the repository root):

    uv run python bench/webui/run.py [--apps 1000] [--requests 50]
        [--database sqlite|postgresql] [--database-url URL] [--engine auto|none]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import html
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from litestar import Litestar  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402
from sqlalchemy import event  # noqa: E402

from gakwaya.apikeys import keys as apikey_format  # noqa: E402
from gakwaya.app import create_app, settle_heap  # noqa: E402
from gakwaya.db.base import utcnow  # noqa: E402
from gakwaya.db.models import (  # noqa: E402
    ApiKey,
    App,
    AppEnvVar,
    Deployment,
    Domain,
    Invitation,
    Membership,
    Organization,
    Release,
    User,
    UserSession,
)
from gakwaya.deploy import projects  # noqa: E402
from gakwaya.deploy.runtime import config_of, seal_env  # noqa: E402
from gakwaya.kernel import Kernel  # noqa: E402
from gakwaya.security.passwords import hash_password  # noqa: E402
from gakwaya.security.tokens import digest, new_token  # noqa: E402
from gakwaya.settings import Settings  # noqa: E402
from tests import services  # noqa: E402  (the same real servers the tests use)

PASSWORD = "bench password that is long enough"
ORG = "bench"
OWNER = "owner@bench.example.com"
PROJECTS = ("shop", "blog", "api", "data", "internal")
ENVIRONMENTS = ("production", "staging")
#: The issue's bar, in milliseconds (p95, per page).
TARGET_P95_MS = 100.0
#: What one app of the organization has; the app whose pages are measured has more.
VARS_PER_APP = 5
DEPLOYS_PER_APP = 3
#: The measured app: a busy one, with more history than one page of each list holds.
BUSY_DEPLOYS = 60
BUSY_VARS = 20
BUSY_DOMAINS = 5

#: Path template → name, as tests/browser/test_main_pages.py lists the main pages.
PAGES: dict[str, str] = {
    "/": "home",
    "/orgs/new": "org-new",
    "/orgs/{org}": "org-overview",
    "/orgs/{org}/projects/{project}": "project",
    "/orgs/{org}/apps/{app}": "app-overview",
    "/orgs/{org}/apps/{app}/deploy": "app-deploy",
    "/orgs/{org}/apps/{app}/deployments": "app-deployments",
    "/orgs/{org}/apps/{app}/releases": "app-releases",
    "/orgs/{org}/apps/{app}/env": "app-env",
    "/orgs/{org}/apps/{app}/domains": "app-domains",
    "/orgs/{org}/apps/{app}/logs": "app-logs",
    "/orgs/{org}/apps/{app}/stats": "app-stats",
    "/orgs/{org}/members": "org-members",
    "/orgs/{org}/invitations": "org-invitations",
    "/orgs/{org}/api-keys": "org-api-keys",
    "/orgs/{org}/audit": "org-audit",
    "/account": "account-profile",
    "/account/password": "account-password",
    "/account/2fa": "account-2fa",
    "/account/sessions": "account-sessions",
    "/plugins": "plugins",
}

#: A link to an app's page: how many apps a page lists.
_APP_LINK = re.compile(r'href="/orgs/[^/"]+/apps/(\d+)"')


@dataclass
class Seeded:
    """What the pages are requested for, and how much was written."""

    app_id: int
    project: str
    counts: dict[str, int]


# The panel ------------------------------------------------------------------------------


@contextlib.contextmanager
def database(kind: str, url: str | None, data: Path) -> Iterator[str]:
    """The database URL: a file in ``data``, a throwaway PostgreSQL, or the one given."""
    if url:
        yield url
    elif kind == "postgresql":
        with services.postgres_server() as admin:
            yield admin
    else:
        yield f"sqlite:///{data / 'gakwaya.db'}"


def engine_mode(wanted: str, data: Path) -> dict[str, Any]:
    """Decide whether the app logs and stats pages talk to a Docker engine.

    ``auto`` uses the engine the tests use, starting Debian's ``dockerd`` when the
    bench may (``ensure_engine``); ``none`` points the docker plugin at a socket that
    does not exist, which is what those pages meet on a panel whose engine is down.
    """
    reason = "--engine none"
    if wanted == "auto":
        from gakwaya.testing.docker import EngineUnavailable, ensure_engine

        try:
            ensure_engine()
        except (EngineUnavailable, OSError) as exc:
            reason = f"no engine could be started: {exc}"
        else:
            return {"engine": "docker", "note": "the engine answered; no app has a container"}
    os.environ["DOCKER_HOST"] = f"unix://{data / 'no-engine.sock'}"
    return {"engine": None, "note": reason}


def make_kernel(database_url: str, data: Path) -> Kernel:
    settings = Settings(
        data_dir=str(data / "data"),
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
        log_level="warning",
    )
    kernel = Kernel.create(settings)
    kernel.migrate()
    return kernel


# Seeding --------------------------------------------------------------------------------


def seed(kernel: Kernel, n_apps: int, audit_rows: int) -> Seeded:
    """One organization of ``n_apps`` apps, as a team of that size has it.

    Rows are written through the models (and the project service, which gives each
    project its environment); values that are encrypted in a real panel (variables,
    release snapshots) are encrypted here too, and audit rows go through the kernel's
    hash-chained log, so every page reads data of the real shape and size.
    """
    box = kernel.box
    now = utcnow()
    counts: Counter[str] = Counter()
    password_hash = hash_password(PASSWORD)
    with kernel.db.transaction() as db:
        owner = User(email=OWNER, name="Owner", password_hash=password_hash, is_superuser=True)
        org = Organization(slug=ORG, name="Bench Org")
        db.add_all([owner, org])
        db.flush()
        db.add(Membership(org_id=org.id, user_id=owner.id, role="owner"))
        roles = ["admin"] * 4 + ["developer"] * 30 + ["viewer"] * 15
        for i, role in enumerate(roles):
            user = User(
                email=f"user{i}@bench.example.com", name=f"User {i}", password_hash=password_hash
            )
            db.add(user)
            db.flush()
            db.add(Membership(org_id=org.id, user_id=user.id, role=role))
        counts["members"] = len(roles) + 1
        for i in range(20):
            db.add(
                Invitation(
                    org_id=org.id,
                    email=f"invited{i}@bench.example.com",
                    role="developer",
                    token_hash=digest(new_token()),
                    invited_by_id=owner.id,
                    expires_at=now + dt.timedelta(days=7),
                )
            )
        counts["invitations"] = 20
        for i in range(10):
            key = apikey_format.generate()
            db.add(
                ApiKey(
                    org_id=org.id,
                    user_id=owner.id,
                    name=f"ci-{i}",
                    prefix=apikey_format.display_prefix(key),
                    key_hash=apikey_format.key_digest(key),
                    scopes=["read", "deploy"] if i % 2 else ["read"],
                )
            )
        counts["api_keys"] = 10
        for i in range(5):  # the owner's other browsers
            db.add(
                UserSession(
                    token_hash=digest(new_token()),
                    user_id=owner.id,
                    csrf_token=new_token(),
                    user_agent=f"Browser {i}",
                    expires_at=now + dt.timedelta(days=14),
                )
            )
        envs: list[tuple[str, str, int]] = []
        for name in PROJECTS:
            projects.create_project(db, org_id=org.id, name=name, description="")
            for env_name in ENVIRONMENTS[1:]:
                projects.create_environment(db, org_id=org.id, project=name, name=env_name)
            for env_name in ENVIRONMENTS:
                env = projects.get_environment(db, org.id, name, env_name)
                envs.append((name, env_name, env.id))
        org_id, owner_id = org.id, owner.id

    busy_index = n_apps // 2
    busy: tuple[int, str] | None = None
    port = 20000
    for index in range(n_apps):
        project, env_name, env_id = envs[index % len(envs)]
        is_busy = index == busy_index
        with kernel.db.transaction() as db:
            image = index % 3 == 0
            app = App(
                org_id=org_id,
                environment_id=env_id,
                name=f"app-{index:04d}",
                source_type="image" if image else "git",
                image="nginx:1.27-alpine" if image else "",
                git_url="" if image else f"https://git.example.com/bench/app-{index:04d}.git",
                port=80 if image else 8000,
                host_port=port + index,
                health_kind="http",
                health_path="/health",
            )
            db.add(app)
            db.flush()
            variables = {
                f"VAR_{k}": (f"value-{index}-{k}", k == 0)
                for k in range(BUSY_VARS if is_busy else VARS_PER_APP)
            }
            for key, (value, secret) in variables.items():
                db.add(
                    AppEnvVar(
                        org_id=org_id,
                        app_id=app.id,
                        key=key,
                        ciphertext=box.encrypt(value),
                        secret=secret,
                    )
                )
            n_deploys = BUSY_DEPLOYS if is_busy else DEPLOYS_PER_APP
            snapshot = seal_env(box, variables)
            release_id = None
            for number in range(1, n_deploys + 1):
                at = now - dt.timedelta(hours=n_deploys - number)
                deployment = Deployment(
                    org_id=org_id,
                    app_id=app.id,
                    number=number,
                    kind="image" if image else "build",
                    state="succeeded",
                    ref="" if image else "main",
                    commit="" if image else f"{number:040x}",
                    created_by=OWNER,
                    created_at=at,
                    started_at=at,
                    finished_at=at + dt.timedelta(seconds=40),
                )
                db.add(deployment)
                db.flush()
                release = Release(
                    org_id=org_id,
                    app_id=app.id,
                    number=number,
                    image=app.image or f"gakwaya/bench-a{app.id}:d{deployment.id}",
                    image_id="sha256:" + f"{app.id:032x}{number:032x}",
                    commit=deployment.commit,
                    config=config_of(app),
                    env_ciphertext=snapshot,
                    deployment_id=deployment.id,
                    created_at=at + dt.timedelta(seconds=30),
                )
                db.add(release)
                db.flush()
                deployment.release_id = release_id = release.id
            app.current_release_id = release_id
            for d in range(BUSY_DOMAINS if is_busy else 1):
                db.add(
                    Domain(
                        org_id=org_id,
                        app_id=app.id,
                        name=f"{'www' if d == 0 else f'd{d}'}.app-{index:04d}.bench.example.com",
                        kind="custom",
                        token=new_token(16),
                        verified_at=now,
                        cert_state="issued",
                        cert_not_after=now + dt.timedelta(days=60),
                        cert_issuer="Bench CA",
                    )
                )
            counts["apps"] += 1
            counts["env_vars"] += len(variables)
            counts["deployments"] += n_deploys
            counts["releases"] += n_deploys
            counts["domains"] += BUSY_DOMAINS if is_busy else 1
            if is_busy:
                busy = (app.id, project)

    actions = ("deployments_create", "env_set", "apps_update", "domains_create", "auth_login")
    with kernel.db.transaction() as db:
        for i in range(audit_rows):
            kernel.audit.record(
                action=actions[i % len(actions)],
                outcome="success",
                actor_type="user",
                actor_id=str(owner_id),
                actor_label=OWNER,
                org_id=org_id,
                target_type="app",
                target_id=str(1 + i % max(n_apps, 1)),
                ip="203.0.113.7",
                status_code=201,
                session=db,
            )
    counts["audit_rows"] = audit_rows
    assert busy is not None, "--apps must be at least 1"
    return Seeded(app_id=busy[0], project=busy[1], counts=dict(counts))


# Measuring ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0 to 100), linear between the closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class QueryCounter:
    """Counts the SQL statements the engine runs (only in the counting pass, after
    the timed one, so the listener costs the timings nothing)."""

    def __init__(self, kernel: Kernel) -> None:
        self.engine = kernel.db.engine
        self.count = 0

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def __enter__(self) -> QueryCounter:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def api_call_counter() -> tuple[Counter[str], Any]:
    """Wrap the dashboard's API client to count the calls each page makes; returns the
    counter and a function that restores the client."""
    from gakwaya_webui.api import Api

    calls: Counter[str] = Counter()
    original = Api.call

    async def counted(self: Api, method: str, path: str, **kwargs: Any) -> Any:
        calls["all"] += 1
        return await original(self, method, path, **kwargs)

    Api.call = counted

    def restore() -> None:
        Api.call = original

    return calls, restore


def page_note(name: str, body: str, engine: dict[str, Any]) -> str | None:
    """What the pages that ask the Docker engine showed: their own words, not a guess."""
    if name not in ("app-overview", "app-logs", "app-stats"):
        return None
    marker = 'class="error" role="alert">'
    if marker in body:
        message = html.unescape(body.split(marker, 1)[1].split("<", 1)[0]).strip()
        return f"rendered with the API's error in the page: {message}"
    if engine["engine"] is None:
        return "rendered without an engine and without an error message"
    return {
        "app-overview": "the engine answered: no instance runs (status card)",
        "app-logs": "the engine answered: no instance, so no output",
        "app-stats": "the engine answered: no instance is running",
    }[name]


async def measure(
    app: Litestar,
    kernel: Kernel,
    seeded: Seeded,
    requests: int,
    warmup: int,
    engine: dict[str, Any],
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with AsyncTestClient(app) as client:
        client.follow_redirects = False
        r = await client.post("/login", data={"email": OWNER, "password": PASSWORD, "next": "/"})
        if r.status_code != 303:
            raise RuntimeError(f"sign-in failed: {r.status_code} {r.text[:300]}")
        paths = {
            PAGES[template]: template.format(org=ORG, project=seeded.project, app=seeded.app_id)
            for template in PAGES
        }
        # Beyond the first page of apps: the overview's "Older apps" link, and its filter.
        overview = (await client.get(paths["org-overview"])).text
        older = re.search(r'<a href="([^"]+)" rel="next">Older apps</a>', overview)
        if older:
            paths["org-overview-older-apps"] = html.unescape(older.group(1))
        paths["org-overview-filtered"] = (
            f"/orgs/{ORG}?project={seeded.project}&environment={ENVIRONMENTS[0]}"
        )
        for _ in range(warmup):
            for path in paths.values():
                await client.get(path)
        # Round robin, so that a burst of load from other processes falls on every
        # page alike instead of on the one being measured at that moment.
        wall: dict[str, list[float]] = {name: [] for name in paths}
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        statuses: dict[str, Counter[int]] = {name: Counter() for name in paths}
        last: dict[str, Any] = {}
        for _ in range(requests):
            for name, path in paths.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                response = await client.get(path)
                wall[name].append((time.perf_counter() - start) * 1000)
                cpu[name].append((time.process_time() - start_cpu) * 1000)
                statuses[name][response.status_code] += 1
                last[name] = response
        for name, path in paths.items():
            times = wall[name]
            results[name] = {
                "path": path,
                "status": dict(statuses[name]),
                "bytes": len(last[name].content),
                "p50_ms": round(percentile(times, 50), 2),
                "p95_ms": round(percentile(times, 95), 2),
                "max_ms": round(max(times), 2),
                "mean_ms": round(statistics.fmean(times), 2),
                "cpu_p50_ms": round(percentile(cpu[name], 50), 2),
                "cpu_p95_ms": round(percentile(cpu[name], 95), 2),
            }
            note = page_note(name, last[name].text, engine)
            if note:
                results[name]["note"] = note
        # One more request of each page, counted: what the time above is made of.
        calls, restore = api_call_counter()
        try:
            for name, path in paths.items():
                calls.clear()
                with QueryCounter(kernel) as queries:
                    response = await client.get(path)
                results[name]["api_calls"] = calls["all"]
                results[name]["sql_statements"] = queries.count
                if name.startswith(("org-overview", "project")):
                    results[name]["apps_listed"] = len(set(_APP_LINK.findall(response.text)))
        finally:
            restore()
    return results


def machine() -> dict[str, Any]:
    memory = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cpus": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000, help="apps in the organization")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--audit-rows", type=int, default=10000)
    parser.add_argument(
        "--settle-heap",
        action="store_true",
        help="gc.collect() and gc.freeze() once the app is built, as gakwaya serve does",
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--database-url", default=None, help="an existing, empty database instead (migrated here)"
    )
    parser.add_argument(
        "--engine",
        choices=["auto", "none"],
        default="auto",
        help="auto: use (or start) the Docker engine; none: pages meet no engine",
    )
    args = parser.parse_args()
    if args.apps < 1 or args.requests < 1:
        sys.exit("--apps and --requests must be at least 1")

    with tempfile.TemporaryDirectory(prefix="gakwaya-bench-webui-") as tmp:
        data = Path(tmp)
        engine = engine_mode(args.engine, data)
        with database(args.database, args.database_url, data) as url:
            kernel = make_kernel(url, data)
            try:
                started = time.perf_counter()
                seeded = seed(kernel, args.apps, args.audit_rows)
                seed_seconds = time.perf_counter() - started
                load_before = machine()["load_average"]
                app = create_app(kernel, background=False)
                if args.settle_heap:
                    settle_heap()
                pages = asyncio.run(
                    measure(app, kernel, seeded, args.requests, args.warmup, engine)
                )
            finally:
                kernel.close()
            dialect = url.split(":", 1)[0].split("+", 1)[0]

    over = {name: p["p95_ms"] for name, p in pages.items() if p["p95_ms"] >= TARGET_P95_MS}
    results: dict[str, Any] = {
        "benchmark": "webui-pages",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "load_average_before": load_before},
        "database": dialect,
        "apps": seeded.counts["apps"],
        "seeded": seeded.counts,
        "seed_seconds": round(seed_seconds, 1),
        "measured_app": {"id": seeded.app_id, "project": seeded.project},
        "signed_in_as": "the organization's owner (also the installation's superuser)",
        "how": (
            "in process: litestar.testing.AsyncTestClient on the ASGI app built by "
            "gakwaya.app.create_app(kernel, background=False), one request at a time; "
            "a time is from sending the request to having the whole response body; pages "
            "are requested in turn (round robin) after the warm-up requests"
        ),
        "cpu_ms": (
            "the CPU time of this process (all its threads) during the request: the "
            "panel's own work, barely changed by other processes' load; on PostgreSQL the "
            "database server's work is in its own process and not counted"
        ),
        "settled_heap": args.settle_heap,
        "requests_per_page": args.requests,
        "warmup_requests_per_page": args.warmup,
        "docker_engine": engine,
        "pages": pages,
        "targets": {
            "every_page_p95_under_100_ms": not over,
            "pages_over": over,
        },
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
