"""One exception hierarchy, mapped to RFC 9457 problem+json responses.

Every error names what went wrong and what to do; validation errors list each
field with the rule its value broke.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from gakwaya_sdk.types import describe_pattern

log = logging.getLogger("gakwaya")

PROBLEM_JSON = "application/problem+json"


class FieldProblem(msgspec.Struct, kw_only=True):
    field: str
    rule: str
    message: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] = []


class GakwayaError(Exception):
    """Base of every error the API reports on purpose."""

    status_code = 400
    title = "Bad request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if headers:
            self.headers = headers

    def problem(self) -> Problem:
        return Problem(title=self.title, status=self.status_code, detail=self.detail)


class FieldError(GakwayaError):
    """A value broke a rule. ``field`` is the JSON name; ``rule`` the human rule."""

    status_code = 422
    title = "Invalid input"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule

    def problem(self) -> Problem:
        return Problem(
            title=self.title,
            status=self.status_code,
            detail=self.detail,
            errors=[FieldProblem(field=self.field, rule=self.rule, message=self.detail)],
        )


class NotAuthenticated(GakwayaError):
    status_code = 401
    title = "Not authenticated"


class PermissionDenied(GakwayaError):
    status_code = 403
    title = "Forbidden"


class NotFound(GakwayaError):
    status_code = 404
    title = "Not found"


class Conflict(GakwayaError):
    status_code = 409
    title = "Conflict"


class Gone(GakwayaError):
    status_code = 410
    title = "Gone"


class TooManyRequests(GakwayaError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(GakwayaError):
    status_code = 503
    title = "Service unavailable"


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        content=msgspec.json.encode(problem),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def handle_gakwaya_error(_request: Request[Any, Any, Any], exc: GakwayaError) -> Response[Any]:
    return problem_response(exc.problem(), exc.headers)


_PATTERN = re.compile(r"matching regex '(?P<pattern>.*)'$")
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _rule_for(message: str) -> str:
    message = _AT.sub("", message)
    m = _PATTERN.search(message)
    if m:
        return describe_pattern(m.group("pattern").replace("\\\\", "\\"))
    # msgspec's own words: "Expected `int` >= 1", "Object missing required field `x`"
    return message[0].lower() + message[1:] if message else "is invalid"


def _field_for(item: dict[str, Any]) -> str:
    key = str(item.get("key") or "")
    if key == "data" and item.get("source") == "body":
        key = ""  # the body itself (a required field missing at its top level)
    message = str(item.get("message") or "")
    at = _AT.search(message)
    path = at.group("path") if at else ""
    missing = re.search(r"missing required field `([^`]+)`", message)
    if missing:
        path = f"{path}.{missing.group(1)}"
    path = path.lstrip(".")
    if key and path:
        return f"{key}.{path}" if not path.startswith(key) else path
    return path or key or "body"


def handle_validation(_request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    items = exc.extra if isinstance(exc.extra, list) else []
    fields: list[FieldProblem] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        field = _field_for(item)
        rule = _rule_for(str(item.get("message", "")))
        fields.append(FieldProblem(field=field, rule=rule, message=f"{field}: {rule}"))
    if not fields:
        detail = str(exc.detail) or "the request body is not valid JSON of the expected shape"
        fields.append(FieldProblem(field="body", rule=detail, message=detail))
    problem = Problem(
        title="Invalid input",
        status=422 if any(f.field != "body" for f in fields) else 400,
        detail="; ".join(f.message for f in fields),
        errors=fields,
    )
    return problem_response(problem)


def handle_http(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    problem = Problem(
        title=exc.__class__.__name__.replace("Exception", "") or "Error",
        status=exc.status_code,
        detail=str(exc.detail),
    )
    return problem_response(problem, dict(exc.headers or {}))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        Problem(
            title="Internal server error",
            status=HTTP_500_INTERNAL_SERVER_ERROR,
            detail="an unexpected error occurred; it has been logged for the operator",
        )
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GakwayaError: handle_gakwaya_error,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}

__all__ = [
    "PROBLEM_JSON",
    "Conflict",
    "FieldError",
    "GakwayaError",
    "Gone",
    "MediaType",
    "NotAuthenticated",
    "NotFound",
    "PermissionDenied",
    "Problem",
    "ServiceUnavailable",
    "TooManyRequests",
]
