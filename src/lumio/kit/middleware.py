"""ASGI middleware: the request body size limit (413), text PostgreSQL refuses in the path,
query or headers (400), the request head limits (431) and Cache-Control for API answers."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lumio.kit.errors import PayloadTooLarge
from lumio.kit.problems import PROBLEM_JSON
from lumio.kit.text import NOT_STORABLE, storable


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes, by Content-Length or by counting a chunked body.

    The body is read here (it is small by definition) and replayed to the app, so that an
    oversized body never reaches a handler half-read.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        # The unread rest of the body would otherwise be taken for the next request: close.
        error = PayloadTooLarge(f"request bodies are limited to {self.limit} bytes")
        await send_problem(send, 413, error.code, error.title, error.detail, close=True)


async def send_problem(
    send: Send, status: int, code: str, title: str, detail: str, close: bool = False
) -> None:
    body = orjson.dumps(
        {"type": "about:blank", "title": title, "status": status, "code": code, "detail": detail}
    )
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _head_storable(scope: Scope) -> bool:
    if not storable(scope.get("path", "")):
        return False
    if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
        return False
    return not any(b"\x00" in value for _, value in scope.get("headers", ()))


class RefuseUnstorableText:
    """A NUL (or invalid Unicode) in the path, the query string or a header is a 400 before any
    handler runs: PostgreSQL cannot store it, and no valid request carries one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _head_storable(scope):
            await send_problem(send, 400, "BAD_REQUEST", "Bad request", NOT_STORABLE)
            return
        await self.app(scope, receive, send)


class HeadLimits:
    """At most ``max_headers`` request headers of at most ``max_bytes`` together (431).

    ``lumio api`` enforces the size while reading (lumio.serve), before a large head is even
    buffered; this covers any other server the app runs on.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_headers: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers", ())
            size = sum(len(name) + len(value) + 4 for name, value in headers)
            if len(headers) > self.max_headers or size > self.max_bytes:
                detail = (
                    f"request headers are limited to {self.max_headers} fields "
                    f"and {self.max_bytes} bytes"
                )
                title = "Request header fields too large"
                await send_problem(send, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE", title, detail)
                return
        await self.app(scope, receive, send)


class NoStoreByDefault:
    """``Cache-Control: no-store`` on every answer that sets no caching of its own.

    API answers carry secrets (a new key, the CSRF token) or personal data; only the dashboard's
    content-hashed assets say otherwise (immutable).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_no_store)
