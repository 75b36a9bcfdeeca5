"""The hottest routes answered below FastAPI's layers (issue 15).

Under load every request to ``GET /v1/channel-status`` or ``/graphql`` went through FastAPI's
telemetry check, the server-error and exception middlewares (each with a ``send`` wrapper), the
exit-stack middleware, the router's walk and Starlette's request-response wrapper before its
handler ran: ~35 µs of CPU on a ~200 µs request, which no handler change could win back. Here a
path and method found in :class:`HotRoutes` are answered directly by the same handler, with
the same request checks, exception handlers, 500 fallback and ``Cache-Control`` default as the
full stack; everything else goes through the full stack unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from lumio.kit.middleware import RequestChecks, add_no_store

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    methods: frozenset[str]
    endpoint: Endpoint


class HotRoutes:
    """Exact paths whose listed methods skip the framework's layers."""

    def __init__(self, checks: RequestChecks) -> None:
        self.checks = checks
        self.routes: dict[str, HotRoute] = {}

    def add(self, path: str, endpoint: Endpoint, methods: tuple[str, ...]) -> None:
        self.routes[path] = HotRoute(frozenset(methods), endpoint)

    def match(self, scope: Scope) -> HotRoute | None:
        """The route for an HTTP request with no root path (a mounted app goes the long way)."""
        if scope["type"] != "http" or scope.get("root_path"):
            return None
        route = self.routes.get(scope["path"])
        return route if route is not None and scope["method"] in route.methods else None

    async def answer(
        self, app: FastAPI, route: HotRoute, scope: Scope, receive: Receive, send: Send
    ) -> None:
        scope["app"] = app
        receive_body = await self.checks.admit(scope, receive, send)
        if receive_body is None:
            return
        request = Request(scope, receive_body)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            await _answer_error(app, request, exc, send)
            return
        await _no_store(response)(scope, receive_body, send)


def _no_store(response: Response) -> Response:
    add_no_store(response.raw_headers)
    return response


async def _answer_error(app: FastAPI, request: Request, exc: Exception, send: Send) -> None:
    """As the full stack does: the handler of the exception's nearest class; an exception only
    the catch-all handles is raised again once answered, as Starlette's ServerErrorMiddleware
    does, so that the server logs it and a test client can see it."""
    exc_class, handler = _handler_of(app, exc)
    response = handler(request, exc)
    if inspect.isawaitable(response):
        response = await response
    await _no_store(response)(request.scope, request.receive, send)
    if exc_class is Exception:
        raise exc


def _handler_of(app: FastAPI, exc: Exception) -> tuple[type[BaseException], Any]:
    handlers = app.exception_handlers
    for exc_class in type(exc).__mro__:
        if exc_class in handlers:
            return exc_class, handlers[exc_class]
    raise exc  # no handler at all: as the full stack would, the server answers 500


class LumioAPI(FastAPI):
    """FastAPI, with :attr:`hot_routes` answered ahead of its layers.

    Requests to those routes skip FastAPI's native telemetry (OpenTelemetry, unused here).
    """

    hot_routes: HotRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot_routes
        route = None if hot is None else hot.match(scope)
        if hot is None or route is None:
            await super().__call__(scope, receive, send)
        else:
            await hot.answer(self, route, scope, receive, send)
