"""The newcomer's journey, in one browser session from the first start to a team:
the one-time setup link → the first administrator → sign in → two-factor enrolment →
an organization, a project and an app from a git repository → a deploy whose build log
is watched live → a variable added with a redeploy → a one-click rollback → a member
invited as viewer, who sees the app but none of the controls their role lacks, and
nothing of another organization.

Everything is real: ``gakwaya serve`` on its embedded defaults (SQLite, in-process
jobs), the Docker engine building the ``python-web`` fixture app, an HTTPS git server
on loopback serving it as a public repository, and Debian's chromium. The only step
not taken in the browser is the operator's: the panel is told to trust the test git
server's certificate authority (the git plugin's ``ca_bundle`` setting), as an
operator with a private git host would once.
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from gakwaya.kernel import installation_id
from gakwaya.testing.docker import remove_installation
from gakwaya.testing.gitserver import HTTPS, bare_repo, https_git_server, make_ca
from tests.browser.conftest import PASSWORD, NewContext, Panel, screenshot
from tests.deploy.pipeline_helpers import APPS

pytestmark = pytest.mark.usefixtures("gakwaya_base_image")

#: The build step that prints a line, waits, then prints another: long enough that the
#: second line can only reach an already open page through the live stream.
STEP_ONE, STEP_TWO = "journey-build-step-one", "journey-build-step-two"
BUILD_PAUSE = 6
#: A deploy builds, starts and health-checks a container: minutes on a loaded machine.
DEPLOY_TIMEOUT_MS = 240_000
FOUNDER = "founder@example.com"
VIEWER = "vera@example.com"


def _split(marker: str) -> str:
    """``marker`` as the shell prints it but not as it is written: step-""two."""
    head, _, tail = marker.rpartition("-")
    return f'{head}-""{tail}'


@pytest.fixture
def public_repo(tmp_path: Path) -> Iterator[tuple[HTTPS, Path]]:
    """python-web with a build step that prints two lines ``BUILD_PAUSE`` seconds apart,
    served over HTTPS without credentials; and the CA file that trusts the server."""
    tree = tmp_path / "tree"
    shutil.copytree(APPS / "python-web", tree)
    dockerfile = tree / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace(
            "WORKDIR /app\n",
            # The nonce keeps the engine's build cache from replaying the step silently.
            # The empty quotes keep the marker out of the log's "Step 4/9 : RUN ..." line,
            # so only the command's output can show it.
            f"WORKDIR /app\nRUN echo {_split(STEP_ONE)} {uuid.uuid4().hex} "
            f"&& sleep {BUILD_PAUSE} && echo {_split(STEP_TWO)}\n",
        )
    )
    root = tmp_path / "srv"
    root.mkdir()
    bare_repo(tree, root / "web.git")
    ca = make_ca(tmp_path / "ca")
    with https_git_server(root, ca, {}, anonymous=True) as server:
        yield server, ca.cert


def _serves(port: int, expected: str, timeout: float = 60) -> str:
    """What the app's host port answers, once it contains ``expected``."""
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                body = answer.read().decode()
        except OSError:
            body = ""
        if expected in body:
            return body
        time.sleep(0.3)
    raise AssertionError(f"port {port} never served {expected!r}; last answer {body!r}")


def _wait_finished(page: Page, state: str) -> None:
    """The deployment page, reloaded by its stream at the end, shows ``state``."""
    expect(page.locator("main h2 .badge, main h2 [data-state]").first).to_contain_text(
        state, timeout=DEPLOY_TIMEOUT_MS
    )


def test_newcomer_journey(
    fresh_panel: Panel,
    new_context: NewContext,
    public_repo: tuple[HTTPS, Path],
    screenshot_dir: Path,
) -> None:
    panel = fresh_panel
    git_server, ca_file = public_repo
    try:
        _journey(panel, new_context, git_server, ca_file, screenshot_dir)
    finally:
        # The panel's containers and images (its installation id is in its database).
        installation = _installation_id(panel)
        if installation:
            remove_installation(installation)


def _installation_id(panel: Panel) -> str | None:
    key = panel.data_dir / "secret.key"
    return installation_id(key.read_text().strip()) if key.exists() else None


def _journey(
    panel: Panel, new_context: NewContext, git_server: HTTPS, ca_file: Path, shots: Path
) -> None:
    page = new_context().new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations below

    # 1. The setup link printed at first start makes the first administrator.
    assert panel.setup_url, panel.stdout
    page.goto(panel.setup_url)
    page.get_by_label("Email").fill(FOUNDER)
    page.get_by_label(re.compile(r"^Password \(at least")).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create administrator").click()
    expect(page.get_by_role("heading", name="Administrator created")).to_be_visible()
    panel.passwords[FOUNDER] = PASSWORD

    # 2. Sign in, then turn on two-factor authentication from the account page.
    page.goto(panel.url("/login"))
    page.get_by_label("Email").fill(FOUNDER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your organizations")).to_be_visible()
    page.get_by_test_id("account-link").click()
    page.get_by_role("link", name="Two-factor authentication").click()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Set up two-factor authentication").click()
    totp = pyotp.TOTP(page.get_by_test_id("totp-secret").inner_text().replace(" ", ""))
    page.get_by_label("The 6-digit code the app shows now").fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    page.get_by_role("button", name="I have saved them").click()
    expect(page.get_by_test_id("2fa-status")).to_contain_text("On")

    # The operator's one setting, on the plugins page: trust the git server's authority.
    page.goto(panel.url("/plugins/gakwaya-git/settings"))
    page.get_by_label(re.compile("^Path of a PEM file")).fill(str(ca_file))
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.get_by_test_id("settings-form")).to_be_visible()
    expect(page.get_by_label(re.compile("^Path of a PEM file"))).to_have_value(str(ca_file))

    # 3. An organization, a project (with its production environment) and an app.
    page.goto(panel.url("/orgs/new"))
    page.get_by_label(re.compile(r"^Name\b")).fill("Acme")
    page.get_by_label("URL name").fill("acme")
    page.get_by_role("button", name="Create organization").click()
    page.wait_for_url(panel.url("/orgs/acme"))
    page.get_by_label("Project name").fill("shop")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("button", name="New app in production").click()
    page.get_by_label("App name").fill("web")
    page.get_by_label("Git URL").fill(git_server.url("web.git"))
    page.get_by_label("Branch, tag or commit").fill("main")
    page.get_by_label("Port the app listens on").fill("8000")
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_test_id("flash")).to_contain_text("App web created")
    app_base = page.url.removesuffix("/deploy")
    assert re.fullmatch(r".*/orgs/acme/apps/\d+", app_base), page.url

    # 4. Deploy, and watch the build log arrive on the open page.
    page.get_by_role("button", name="Deploy now").click()
    page.wait_for_url(re.compile(r"/deployments/\d+$"))
    page.evaluate("() => { window.journeyMarker = 'same page'; }")
    log = page.get_by_test_id("deploy-log")
    assert STEP_TWO not in log.inner_text(), "the build finished before its page opened"
    expect(log).to_contain_text(STEP_TWO, timeout=DEPLOY_TIMEOUT_MS)
    # The line came through the stream: the page was not reloaded to show it.
    assert page.evaluate("() => window.journeyMarker") == "same page"
    assert log.inner_text().index(STEP_ONE) < log.inner_text().index(STEP_TWO)
    screenshot(page, "journey-live-log-desktop-light", shots)
    _wait_finished(page, "succeeded")
    page.goto(app_base)
    port_text = page.get_by_test_id("app-url").inner_text()
    port = int(re.search(r"port (\d+)", port_text).group(1))  # type: ignore[union-attr]
    assert "release=v1 greeting=hello" in _serves(port, "release=v1")

    # 5. A variable, saved with a redeploy.
    page.goto(f"{app_base}/env")
    page.get_by_label(re.compile(r"^Name\b")).fill("GREETING")
    page.get_by_label("Value").fill("bonjour")
    page.get_by_label("Redeploy the app with the change").check()
    page.get_by_role("button", name="Save variable").click()
    expect(page.get_by_test_id("flash")).to_contain_text("GREETING saved. Redeploying")
    expect(page.get_by_test_id("env-vars")).to_contain_text("bonjour")
    _serves(port, "release=v2 greeting=bonjour", timeout=DEPLOY_TIMEOUT_MS / 1000)

    # 6. Roll back to the first release with one click (and its confirmation).
    page.goto(f"{app_base}/releases")
    expect(page.get_by_test_id("releases")).to_contain_text("#2 (current)")
    page.get_by_role("button", name="Roll back to #1").click()
    page.wait_for_url(re.compile(r"/deployments/\d+$"))
    expect(page.get_by_test_id("flash")).to_contain_text("Rollback queued")
    _wait_finished(page, "succeeded")
    assert "greeting=hello" in _serves(port, "release=v1")
    page.goto(f"{app_base}/releases")
    expect(page.get_by_test_id("releases")).to_contain_text("#1 (current)")

    # 7. A teammate invited as viewer.
    page.goto(panel.url("/orgs/acme/invitations"))
    page.get_by_label("Their email").fill(VIEWER)
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Create invitation").click()
    link = page.get_by_test_id("invitation-link").inner_text().strip()
    # A second organization the viewer is not a member of.
    page.goto(panel.url("/orgs/new"))
    page.get_by_label(re.compile(r"^Name\b")).fill("Globex")
    page.get_by_label("URL name").fill("globex")
    page.get_by_role("button", name="Create organization").click()
    page.wait_for_url(panel.url("/orgs/globex"))

    viewer = new_context().new_page()
    viewer.goto(link)
    viewer.get_by_label("Choose a password").fill(PASSWORD)
    viewer.get_by_label("The password again").fill(PASSWORD)
    viewer.get_by_role("button", name="Create my account and join").click()
    viewer.wait_for_url(panel.url("/orgs/acme"))
    expect(viewer.get_by_role("link", name="web")).to_be_visible()

    # The app, its release and its variables are there to read...
    viewer.goto(app_base)
    expect(viewer.get_by_test_id("app-name")).to_have_text("web")
    viewer.goto(f"{app_base}/env")
    expect(viewer.get_by_test_id("env-vars")).to_contain_text("GREETING")
    # ...but no control their role lacks, and the server refuses what the page hides.
    expect(viewer.get_by_role("button", name="Save variable")).to_have_count(0)
    viewer.goto(f"{app_base}/deploy")
    expect(viewer.get_by_role("button", name="Deploy now")).to_have_count(0)
    expect(viewer.get_by_text("Your role (viewer) cannot deploy")).to_be_visible()
    viewer.goto(f"{app_base}/releases")
    expect(viewer.get_by_test_id("releases")).to_be_visible()
    expect(viewer.get_by_role("button", name=re.compile("^Roll back"))).to_have_count(0)
    csrf = viewer.locator("input[name=csrf_token]").first
    token = csrf.get_attribute("value") if csrf.count() else ""
    refused = viewer.request.post(
        f"{app_base}/deploy", form={"csrf_token": token or ""}, max_redirects=0
    )
    assert refused.status == 403, refused.status
    # Another organization does not exist for them.
    answer = viewer.goto(panel.url("/orgs/globex"))
    assert answer is not None and answer.status == 404
    assert "Globex" not in viewer.content()

    # Nothing the viewer tried changed what serves.
    assert "release=v1 greeting=hello" in _serves(port, "release=v1")
