"""The home page: the signed-in user's organizations, or how to get one."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response

from gakwaya_webui.api import Api
from gakwaya_webui.render import page
from gakwaya_webui.routing import page_get

AnyRequest = Request[Any, Any, Any]


@page_get("/")
async def home(request: AnyRequest) -> Response[Any]:
    # Raises ApiError(401) when nobody is signed in: the router sends them to /login.
    await Api.of(request).get("/account")
    return await page(request, "home.html")


ROUTES: list[Any] = [home]
