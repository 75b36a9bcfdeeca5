"""Rendering errors once for REST: application/problem+json (RFC 9457) with a stable code."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from lumio.kit.errors import LumioError, TooManyRequests, Unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
}

# PostgreSQL unreachable or restarting: the request cannot be served now, but may be soon.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    TimeoutError,
)


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body.update(code=code, detail=detail)
    if extra:
        body.update(extra)
    # Set here too: a 500 is answered outside the middleware that sets it on other answers.
    headers = {"Cache-Control": "no-store", **(headers or {})}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="lumio"'
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def lumio_problem(error: LumioError) -> Response:
    headers = None
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(error.retry_after)}
    return problem(error.status_code, error.code, error.title, error.detail, headers=headers)


async def _on_lumio_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, LumioError)
    return lumio_problem(exc)


def validation_detail(errors: Iterable[Mapping[str, Any]], unplaced: str = "") -> str:
    """``place: message`` of each validation error (pydantic's shape), as REST and GraphQL say
    them; ``unplaced`` names the place of an error about the input as a whole."""
    return "; ".join(
        f"{'.'.join(map(str, e.get('loc', ()))) or unplaced}: {e.get('msg', 'invalid')}"
        for e in errors
    )


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    errors = [{"location": list(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in raw]
    detail = validation_detail(raw)
    return problem(400, "BAD_REQUEST", "Bad request", detail, {"errors": errors})


async def _on_http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    # Keeps the headers Starlette sets, such as Allow on a 405.
    headers = dict(exc.headers or {})
    return problem(exc.status_code, code, str(exc.detail), str(exc.detail), headers=headers)


async def _on_database_down(_: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %r", exc)
    return lumio_problem(Unavailable("the database cannot be reached; try again shortly"))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    """The last resort: a bug. The client learns nothing of it; the log gets the traceback.

    The fuzz tests fail on any request that ends here.
    """
    log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "INTERNAL", "Internal error", "an unexpected error occurred")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_exception_handler(LumioError, _on_lumio_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for exc_type in DATABASE_DOWN:
        app.add_exception_handler(exc_type, _on_database_down)
