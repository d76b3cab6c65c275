"""Route decorators of dashboard pages: not in the API schema, public to the kernel.

``opt["public"]`` lets the kernel middleware pass the request through unauthenticated
(the page signs nobody in: the API calls it makes do, and a 401 sends the browser to
``/login``); ``opt["webui"]`` tells the middleware not to audit the page request
itself, since the API call it makes is audited, once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import get, post

OPT: dict[str, Any] = {"public": True, "webui": True}


def page_get(path: str, **kwargs: Any) -> Callable[[Any], Any]:
    return get(path, include_in_schema=False, opt=dict(OPT), **kwargs)


def page_post(path: str, **kwargs: Any) -> Callable[[Any], Any]:
    return post(path, include_in_schema=False, opt=dict(OPT), status_code=303, **kwargs)
