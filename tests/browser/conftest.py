"""The dashboard in a real browser: Debian's chromium driven by Playwright.

Each test module gets its own ``gakwaya serve`` process, as an operator runs it:
an empty data directory (SQLite, the embedded default), in-process jobs, a free
loopback port, and the one-time setup link read from what it prints. Everything a
pytest-xdist worker starts is its own (ports, directories, the browser), so
``pytest -n 2 --dist loadfile`` runs two modules side by side.

Playwright's own browser downloads are never used: ``scripts/test`` installs
Debian's ``chromium`` and the tests launch that binary, headless, so no display
is needed. A missing chromium is a clear failure, not a skip.

Screenshots (:func:`screenshots`) go to ``docs/screenshots/`` when
``GAKWAYA_TEST_SCREENSHOTS=1``; otherwise to the test's temporary directory, so
that an ordinary run still takes them (and fails when a page cannot be rendered)
without rewriting files in the working tree.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import worker_port_range
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("GAKWAYA_TEST_CHROMIUM", "/usr/bin/chromium")
START_DEADLINE = 90.0
STOP_DEADLINE = 30.0
#: Milliseconds Playwright waits for an element or a navigation before failing.
ACTION_TIMEOUT_MS = 15_000

PASSWORD = "a long enough passphrase 42"
ADMIN_EMAIL = "admin@example.com"

DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 360, "height": 740}
#: name -> (viewport, colour scheme) of :func:`screenshots`.
VARIANTS: dict[str, tuple[dict[str, int], str]] = {
    "desktop-light": (DESKTOP, "light"),
    "desktop-dark": (DESKTOP, "dark"),
    "mobile-light": (MOBILE, "light"),
    "mobile-dark": (MOBILE, "dark"),
}


# The panel ---------------------------------------------------------------------------


@dataclass
class Panel:
    """A running ``gakwaya serve``."""

    proc: subprocess.Popen[bytes]
    base: str
    data_dir: Path
    stdout_path: Path
    stderr_path: Path
    #: The one-time link printed at first start (None once a user exists).
    setup_url: str | None = None
    #: Accounts created through :meth:`create_admin` / :meth:`create_user`.
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def setup_token(self) -> str:
        assert self.setup_url, f"no setup link was printed:\n{self.stdout}"
        return self.setup_url.split("?token=", 1)[1]

    def url(self, path: str) -> str:
        return self.base + path

    def create_admin(self, email: str = ADMIN_EMAIL, password: str = PASSWORD) -> str:
        """The first administrator, through the API the setup page calls (for tests
        that start after setup); the setup page itself has its own browser test."""
        if email in self.passwords:
            return email
        answer = httpx.post(
            self.url("/api/v1/setup"),
            json={"token": self.setup_token, "email": email, "password": password},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        self.passwords[email] = password
        return email

    def create_member(
        self, org: str, email: str, role: str = "developer", password: str = PASSWORD
    ) -> str:
        """Another person, as the API makes one: the first administrator invites
        ``email`` into ``org`` (created when missing) and the invitation registers
        the account."""
        admin = self.create_admin()
        with self.session(admin) as api:
            if api.get(f"/orgs/{org}").status_code == 404:
                created = api.post("/orgs", json={"slug": org, "name": org.title()})
                assert created.status_code == 201, created.text
            invited = api.post(f"/orgs/{org}/invitations", json={"email": email, "role": role})
            assert invited.status_code == 201, invited.text
        registered = httpx.post(
            self.url("/api/v1/invitations/register"),
            json={"token": invited.json()["token"], "password": password},
            timeout=30,
        )
        assert registered.status_code == 201, registered.text
        self.passwords[email] = password
        return email

    @contextmanager
    def session(self, email: str = ADMIN_EMAIL) -> Iterator[httpx.Client]:
        """An API client signed in as ``email`` (password login, no 2FA), sending the
        CSRF header: a quick way to arrange what a test then looks at in the browser."""
        with httpx.Client(base_url=self.base + "/api/v1", timeout=30) as client:
            login = client.post(
                "/auth/login", json={"email": email, "password": self.passwords[email]}
            )
            assert login.status_code == 200, login.text
            client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
            yield client

    def stop(self) -> None:
        """SIGTERM, then a clean exit expected (a traceback at shutdown fails the test)."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"gakwaya serve ignored SIGTERM for {STOP_DEADLINE}s:\n{self.stderr}")


def create_image_app(
    api: httpx.Client, org: str, project: str, name: str, *, image: str, port: int = 80
) -> int:
    """An app of ``image`` in the production environment of ``project`` (never deployed:
    the pages show it as it is), made through the API; its id."""
    r = api.post(
        f"/orgs/{org}/apps",
        json={
            "project": project,
            "environment": "production",
            "name": name,
            "source_type": "image",
            "image": image,
            "port": port,
        },
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def panel_environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any GAKWAYA_* of theirs: SQLite in
    ``data_dir``, no Redis (in-process jobs), this worker's slice of app ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAKWAYA_")}
    env["GAKWAYA_DATA_DIR"] = str(data_dir)
    env["GAKWAYA_APP_PORT_RANGE"] = worker_port_range()
    env["GAKWAYA_HOST"] = "127.0.0.1"
    env.update(extra)
    return env


def _setup_url(stdout: str) -> str | None:
    for line in stdout.splitlines():
        if "/setup?token=" in line:
            return line.strip().split()[0]
    return None


def _start(workdir: Path, env: dict[str, str], name: str) -> Panel | None:
    """One attempt on a free port; None when the port was taken meanwhile (another
    xdist worker, or anything else on the machine, got it between our probe and
    uvicorn's bind)."""
    port = free_port()
    stdout_path, stderr_path = workdir / f"{name}.out", workdir / f"{name}.err"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gakwaya", "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    data_dir = Path(env["GAKWAYA_DATA_DIR"])
    panel = Panel(proc, f"http://127.0.0.1:{port}", data_dir, stdout_path, stderr_path)
    deadline = time.monotonic() + START_DEADLINE
    while True:
        if proc.poll() is not None:
            if "address already in use" in panel.stderr.lower():
                return None
            pytest.fail(
                f"gakwaya serve exited with {proc.returncode} before answering:\n"
                f"{panel.stdout}\n{panel.stderr}"
            )
        try:
            if httpx.get(panel.url("/healthz"), timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"/healthz did not answer within {START_DEADLINE}s:\n{panel.stderr}")
        time.sleep(0.1)
    panel.setup_url = _setup_url(panel.stdout)
    return panel


@contextmanager
def serving(
    workdir: Path, name: str = "serve", database: Path | None = None, **extra_env: str
) -> Iterator[Panel]:
    """A fresh panel until the block ends: an empty data directory, or one holding
    only a copy of ``database`` (a migrated SQLite file with no user yet)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = panel_environment(workdir / "data", **extra_env)
    if database is not None:
        (workdir / "data").mkdir(exist_ok=True)
        shutil.copyfile(database, workdir / "data" / "gakwaya.db")
    panel = None
    for attempt in range(3):
        panel = _start(workdir, env, f"{name}-{attempt}")
        if panel is not None:
            break
    assert panel is not None, "no free port for gakwaya serve after 3 attempts"
    try:
        yield panel
    finally:
        panel.stop()
        if "Traceback" in panel.stderr:
            pytest.fail(f"gakwaya serve logged an error:\n{panel.stderr}")
        # The dashboard's in-process API calls are not logged as HTTP requests at INFO.
        assert "HTTP Request:" not in panel.stderr, panel.stderr[-2000:]


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated by ``gakwaya migrate``, once per test process: a panel
    started on a copy skips the migrations (the slowest part of a first start). The
    first start itself, on an empty directory, is what ``fresh_panel`` runs."""
    workdir = tmp_path_factory.mktemp("migrated")
    env = panel_environment(workdir / "data")
    done = subprocess.run(
        [sys.executable, "-m", "gakwaya", "migrate"],
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_DEADLINE,
        check=False,
    )
    assert done.returncode == 0, f"gakwaya migrate failed:\n{done.stdout}\n{done.stderr}"
    database = workdir / "data" / "gakwaya.db"
    assert database.is_file(), done.stdout
    return database


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory, migrated_database: Path) -> Iterator[Panel]:
    """The module's panel: one process shared by the module's tests (they create
    what they need under names of their own)."""
    with serving(tmp_path_factory.mktemp("panel"), database=migrated_database) as p:
        yield p


@pytest.fixture
def fresh_panel(tmp_path: Path) -> Iterator[Panel]:
    """A panel of the test's own on an empty data directory, as at an operator's
    first start: never set up yet (its setup link unused)."""
    with serving(tmp_path / "panel") as p:
        yield p


@pytest.fixture(scope="module")
def admin(panel: Panel) -> str:
    """The email of the module panel's first administrator (created through the API)."""
    return panel.create_admin()


# The browser --------------------------------------------------------------------------


# Per module, not per session: with --dist loadfile a worker also runs modules that
# need no browser, and neither Playwright's driver nor chromium should linger there.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        pytest.fail(
            f"no chromium at {CHROMIUM}: install Debian's (apt-get install chromium; "
            "scripts/test does), or point GAKWAYA_TEST_CHROMIUM at one"
        )
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        # Chromium refuses to start its sandbox as root (it exits unless given
        # --no-sandbox), and scripts/test runs as root in a fresh container or VM:
        # there, and only there, the sandbox is off (Playwright then passes
        # --no-sandbox). Any other user keeps it, unless told otherwise because
        # their machine has no user namespaces for it (GAKWAYA_TEST_CHROMIUM_SANDBOX=0).
        # The pages are our own, on loopback.
        chromium_sandbox=os.geteuid() != 0
        and os.environ.get("GAKWAYA_TEST_CHROMIUM_SANDBOX", "1") != "0",
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def signed_in(browser: Browser, panel: Panel, admin: str) -> Any:
    """The administrator's cookies (``storage_state``), signed in once per module through
    the login form."""
    context = browser.new_context()
    try:
        sign_in(context.new_page(), panel, admin)
        return context.storage_state()
    finally:
        context.close()


NewContext = Callable[..., BrowserContext]


@pytest.fixture
def new_context(browser: Browser) -> Iterator[NewContext]:
    """Make browser contexts (each its own cookie jar: one per person in a test),
    desktop-sized and light unless told otherwise; all closed at the end."""
    made: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        options.setdefault("viewport", DESKTOP)
        options.setdefault("color_scheme", "light")
        options.setdefault("locale", "en-GB")
        context = browser.new_context(**options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def page(new_context: NewContext) -> Page:
    """A desktop page, light scheme, in a fresh context."""
    return new_context().new_page()


def sign_in(page: Page, panel: Panel, email: str, password: str | None = None) -> None:
    """Sign in through the dashboard's login form (no second factor)."""
    page.goto(panel.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password or panel.passwords[email])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


# Screenshots --------------------------------------------------------------------------


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    if os.environ.get("GAKWAYA_TEST_SCREENSHOTS") == "1":
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        return SCREENSHOT_DIR
    target = tmp_path / "screenshots"
    target.mkdir(exist_ok=True)
    return target


def screenshots(
    page: Page,
    name: str,
    directory: Path,
    variants: tuple[str, ...] = tuple(VARIANTS),
) -> list[Path]:
    """Open ``page``'s address again, with its cookies, in each variant (desktop
    1280x800 / mobile 360x740, light / dark) and save ``<name>-<variant>.png``.

    Only for pages that show the same thing on a second GET (not a secret shown
    once); for those, :func:`screenshot` takes the page as it is.
    """
    browser = page.context.browser
    assert browser is not None
    state = page.context.storage_state()
    written = []
    for variant in variants:
        viewport, scheme = VARIANTS[variant]
        context = browser.new_context(
            viewport=viewport,  # type: ignore[arg-type]
            color_scheme=scheme,  # type: ignore[arg-type]
            storage_state=state,
            locale="en-GB",
            reduced_motion="reduce",
        )
        try:
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            other = context.new_page()
            answer = other.goto(page.url)
            assert answer is not None and answer.ok, f"{page.url}: {answer and answer.status}"
            written.append(screenshot(other, f"{name}-{variant}", directory))
        finally:
            context.close()
    return written


def screenshot(page: Page, name: str, directory: Path) -> Path:
    """Save the page as it is now to ``<directory>/<name>.png``."""
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    assert path.stat().st_size > 0
    return path
