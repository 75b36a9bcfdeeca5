"""ASGI middleware: the request body size limit (413), text PostgreSQL refuses in the path,
query or headers (400), the request head limits (431) and Cache-Control for API answers."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lumio.kit.errors import PayloadTooLarge
from lumio.kit.problems import PROBLEM_JSON
from lumio.kit.text import NOT_STORABLE, storable


class RequestGuards:
    """The API's request checks and its answers' default header, as one ASGI layer.

    In order: the head limits (431), text PostgreSQL refuses in the path, query or headers
    (400), the body size (413), then ``Cache-Control: no-store`` on the answer. One layer, not
    four: each ASGI layer costs a request a call, a frame and for some a ``send`` wrapper, ~4 %
    of the hottest endpoint's CPU for the four together (issue 15, bench/README.md).
    """

    def __init__(self, app: ASGIApp, checks: RequestChecks):
        self.app = app
        self.checks = checks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif (receive_body := await self.checks.admit(scope, receive, send)) is not None:
            await self.app(scope, receive_body, no_store_by_default(send))


class RequestChecks:
    """The checks of :class:`RequestGuards`, shared with a caller that answers a request
    itself (the API's hot routes, lumio.api.hot)."""

    def __init__(self, max_body_bytes: int, max_head_bytes: int, max_headers: int) -> None:
        self.body_limit = max_body_bytes
        self.head_limits = HeadLimits(max_head_bytes, max_headers)

    async def admit(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """The request's ``receive`` when it passed, or None once it has been answered."""
        if not await self.head_limits.passed(scope, send) or not await _storable(scope, send):
            return None
        return await limited_body(scope, receive, send, self.body_limit)


async def limited_body(scope: Scope, receive: Receive, send: Send, limit: int) -> Receive | None:
    """Refuse bodies over ``limit`` bytes, by Content-Length or by counting a chunked body;
    None when refused (or the client left).

    The body is read here (it is small by definition) and replayed to the app, so that an
    oversized body never reaches a handler half-read.
    """
    headers = dict(scope["headers"])
    length = headers.get(b"content-length")
    if length is None and b"transfer-encoding" not in headers:
        return receive
    if length is not None and (not length.isdigit() or int(length) > limit):
        await _refuse_body(send, limit)
        return None
    chunks = await _read_body(receive, send, limit)
    return None if chunks is None else _replay(b"".join(chunks), receive)


async def _read_body(receive: Receive, send: Send, limit: int) -> list[bytes] | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            await _refuse_body(send, limit)
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse_body(send: Send, limit: int) -> None:
    # The unread rest of the body would otherwise be taken for the next request: close.
    error = PayloadTooLarge(f"request bodies are limited to {limit} bytes")
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


async def _storable(scope: Scope, send: Send) -> bool:
    """A NUL (or invalid Unicode) in the path, the query string or a header is a 400 before any
    handler runs: PostgreSQL cannot store it, and no valid request carries one."""
    if _head_storable(scope):
        return True
    await send_problem(send, 400, "BAD_REQUEST", "Bad request", NOT_STORABLE)
    return False


class HeadLimits:
    """At most ``max_headers`` request headers of at most ``max_bytes`` together (431).

    ``lumio api`` enforces the size while reading (lumio.serve), before a large head is even
    buffered; this covers any other server the app runs on.
    """

    def __init__(self, max_bytes: int, max_headers: int) -> None:
        self.max_bytes = max_bytes
        self.max_headers = max_headers

    async def passed(self, scope: Scope, send: Send) -> bool:
        headers = scope.get("headers", ())
        size = sum(len(name) + len(value) + 4 for name, value in headers)
        if len(headers) <= self.max_headers and size <= self.max_bytes:
            return True
        detail = (
            f"request headers are limited to {self.max_headers} fields and {self.max_bytes} bytes"
        )
        title = "Request header fields too large"
        await send_problem(send, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE", title, detail)
        return False


NO_STORE = (b"cache-control", b"no-store")


def add_no_store(headers: list[tuple[bytes, bytes]]) -> None:
    """Append ``Cache-Control: no-store`` unless ``headers`` set caching of their own."""
    if not any(name.lower() == b"cache-control" for name, _ in headers):
        headers.append(NO_STORE)


def no_store_by_default(send: Send) -> Send:
    """``Cache-Control: no-store`` on every answer that sets no caching of its own.

    API answers carry secrets (a new key, the CSRF token) or personal data; only the dashboard's
    content-hashed assets say otherwise (immutable).
    """

    async def send_no_store(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            add_no_store(headers)
            message = {**message, "headers": headers}
        await send(message)

    return send_no_store
