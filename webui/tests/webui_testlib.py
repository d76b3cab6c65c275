"""Helpers of the dashboard tests: a browser-like client signed in through /login."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from tests.conftest import PASSWORD, World

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def browser(app: Litestar) -> TestClient[Litestar]:
    """A client that, like a browser, does not follow redirects by itself."""
    c = TestClient(app)
    c.follow_redirects = False
    return c


def sign_in(client: Any, email: str, password: str = PASSWORD) -> None:
    r = client.post("/login", data={"email": email, "password": password, "next": "/"})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"
    assert client.cookies.get("gakwaya_session")


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    m = _CSRF.search(html)
    assert m, "no form with a csrf_token on the page"
    return m.group(1)


def text_of(html: str) -> str:
    """The page's text, tags removed and whitespace collapsed (for assertions)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def as_session(app: Litestar, session_headers: dict[str, str]) -> TestClient[Litestar]:
    """A browser holding the cookies of a session made by ``tests.conftest.make_session``
    (``world.a.sessions[role]``)."""
    c = browser(app)
    for part in session_headers["Cookie"].split(";"):
        name, _, value = part.strip().partition("=")
        c.cookies.set(name, value)
    return c


def form(client: Any, url: str, data: dict[str, str], *, csrf: str | None = None) -> Any:
    """POST a dashboard form with the CSRF token the browser's pages carry."""
    token = client.cookies.get("gakwaya_csrf") if csrf is None else csrf
    return client.post(url, data={"csrf_token": token, **data})


def make_app(client: Any, world: World, name: str = "web", **extra: Any) -> dict[str, Any]:
    """An app of acme's project ``shop`` (made when missing), production environment,
    created by the owner through the API; a git app unless ``extra`` says otherwise."""
    api = "/api/v1/orgs/acme"
    h = world.a.sessions["owner"]
    r = client.post(f"{api}/projects", json={"name": "shop"}, headers=h)
    assert r.status_code in (201, 409), r.text
    body = {
        "project": "shop",
        "environment": "production",
        "name": name,
        "git_url": "https://git.example.com/acme/web.git",
        **extra,
    }
    r = client.post(f"{api}/apps", json=body, headers=h)
    assert r.status_code == 201, r.text
    return dict(r.json())
