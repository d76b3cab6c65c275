"""The panel's REST API, called in process: the dashboard's only source of data.

A page never touches the database or a kernel service. It sends the request a
script would send to ``/api/v1`` through the same Litestar app (``httpx``'s ASGI
transport), with the browser's cookies and address, so permissions, organization
scoping (404), validation (problem+json naming the field) and audit rows are exactly
the API's. A form's hidden ``csrf_token`` travels as ``X-CSRF-Token``: the API's
middleware checks it against the session, the dashboard checks nothing itself.

Cookies the API sets (sign-in, sign-out) are kept for the rest of the request, so a
later call in the same page sees the new session, and handed to the browser by
:func:`gakwaya_webui.render.forward_cookies`.
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any

import httpx
from litestar import Request

API_PREFIX = "/api/v1"
#: Key in ``request.state`` of the per-request cookie jar and outgoing Set-Cookie lines.
STATE_KEY = "webui_api"


class ApiError(Exception):
    """The API answered 4xx/5xx; ``detail`` is its message, ``fields`` the named fields."""

    def __init__(
        self, status: int, title: str, detail: str, fields: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.fields: dict[str, str] = dict(fields or {})

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        title, detail = response.reason_phrase or "Error", ""
        fields: dict[str, str] = {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            title = str(body.get("title") or title)
            detail = str(body.get("detail") or "")
            for item in body.get("errors") or []:
                if isinstance(item, dict) and item.get("field"):
                    name = str(item["field"])
                    fields.setdefault(name, str(item.get("message") or item.get("rule") or ""))
        if not detail:
            detail = response.text[:500] if response.text else title
        return cls(response.status_code, title, detail, fields)


class _State:
    """Per browser request: the cookies the API sees, and those to hand back."""

    __slots__ = ("cookies", "set_cookie")

    def __init__(self, cookie_header: str) -> None:
        self.cookies: dict[str, str] = {}
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie_header)
        except Exception:  # a malformed header: send what we could parse (nothing)
            jar = SimpleCookie()
        for key, morsel in jar.items():
            self.cookies[key] = morsel.value
        self.set_cookie: list[str] = []

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def absorb(self, response: httpx.Response) -> None:
        for line in response.headers.get_list("set-cookie"):
            self.set_cookie.append(line)
            jar: SimpleCookie = SimpleCookie()
            jar.load(line)
            for key, morsel in jar.items():
                if morsel.value == "" or morsel["max-age"] in ("0", 0):
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = morsel.value


def state_of(request: Request[Any, Any, Any]) -> _State:
    state: dict[str, Any] = request.scope.setdefault("state", {})
    current = state.get(STATE_KEY)
    if current is None:
        current = _State(request.headers.get("cookie", ""))
        state[STATE_KEY] = current
    return current


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The browser's address as the kernel middleware resolved it (trusted proxies)."""
    state = request.scope.get("state") or {}
    ip = state.get("client_ip") if isinstance(state, dict) else None
    if ip:
        return str(ip)
    return request.client.host if request.client else "127.0.0.1"


class Api:
    """Calls to ``/api/v1`` on behalf of the browser that made ``request``."""

    def __init__(self, request: Request[Any, Any, Any], *, csrf: str | None = None) -> None:
        self.request = request
        self.csrf = csrf
        self._state = state_of(request)

    @classmethod
    def of(cls, request: Request[Any, Any, Any], *, csrf: str | None = None) -> Api:
        return cls(request, csrf=csrf)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request; the parsed JSON body (None when empty), or raise ApiError."""
        headers = {"accept": "application/json", "user-agent": self._user_agent()}
        cookie = self._state.cookie_header()
        if cookie:
            headers["cookie"] = cookie
        if self.csrf is not None:
            headers["x-csrf-token"] = self.csrf
        transport = httpx.ASGITransport(
            app=self.request.app,  # type: ignore[arg-type]
            client=(client_ip(self.request), 0),
        )
        query = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        async with httpx.AsyncClient(transport=transport, base_url="http://panel") as client:
            response = await client.request(
                method,
                API_PREFIX + path,
                json=json,
                params=query or None,
                headers=headers,
            )
        self._state.absorb(response)
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        if not response.content:
            return None
        if "json" not in response.headers.get("content-type", ""):
            return response.text
        return response.json()

    def _user_agent(self) -> str:
        # Sessions list the browser they were opened from.
        return self.request.headers.get("user-agent", "")

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, json: Any = None) -> Any:
        return await self.call("POST", path, json=json if json is not None else {})

    async def put(self, path: str, json: Any = None) -> Any:
        return await self.call("PUT", path, json=json if json is not None else {})

    async def patch(self, path: str, json: Any = None) -> Any:
        return await self.call("PATCH", path, json=json if json is not None else {})

    async def delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.call("DELETE", path, params=params)
