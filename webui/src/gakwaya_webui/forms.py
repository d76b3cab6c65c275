"""Reading a submitted form and asking before a destructive action.

Handlers take the form as ``data: Form`` (URL-encoded fields, each a string) and pass
``data.get("csrf_token")`` to :class:`~gakwaya_webui.api.Api`; nothing here checks the
token: the API does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from litestar import Request, Response
from litestar.enums import RequestEncodingType
from litestar.params import Body

from gakwaya_webui.render import page

#: The body of a dashboard form: field name -> value.
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def confirmed(data: Mapping[str, Any]) -> bool:
    return data.get("confirmed") == "yes"


async def ask_confirmation(
    request: Request[Any, Any, Any],
    data: Mapping[str, Any],
    *,
    message: str,
    label: str,
    back: str,
    keep: tuple[str, ...] = (),
) -> Response[str]:
    """The no-JS confirmation page: the same form again, with confirmed=yes."""
    return await page(
        request,
        "confirm.html",
        message=message,
        label=label,
        action=request.url.path,
        back=back,
        hidden={k: text(data, k) for k in keep},
    )
