"""A lean HTTP/1.1 keep-alive client for the poller's hot path: GET to one origin, nothing else.

httpx spends 1-3 ms of CPU per request at the concurrency the poller runs (its pool walks every
connection for each request), which holds one worker process far below the 1,000 requests/s that
5,000 playing accounts need (bench/README.md). The poller needs little: GET with a few headers,
keep-alive connections to one origin, TLS, bodies with Content-Length or chunked, a timeout.
This is that, on httptools (the C parser that uvicorn[standard] already brings). The token
endpoint and the API's rare calls keep using httpx.

A connection that the server closed while idle (keep-alive timeout) is noticed when a request on
it fails before any byte of the answer: that request is sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

MAX_BODY_BYTES = 1 << 20


class HttpError(Exception):
    """The request failed on the way (connection refused, reset, closed, bad answer)."""


class HttpTimeout(HttpError):
    pass


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status_code: int
    # Lower-case names; a repeated header keeps its last value.
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[HttpResponse] | None = None
        self.closed = False
        # Some of the answer arrived: sending the request again could repeat it.
        self.answered = False
        self._headers: dict[str, str] = {}
        self._body = bytearray()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"malformed HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpError(f"connection closed: {exc or 'by the server'}"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body += body
        if len(self._body) > MAX_BODY_BYTES:
            self._fail(HttpError("answer body too large"))

    def on_message_complete(self) -> None:
        if self.waiter is None or self.waiter.done():
            return
        status = self.parser.get_status_code()
        response = HttpResponse(status, self._headers, bytes(self._body))
        if not self.parser.should_keep_alive():
            self.close()
        self.waiter.set_result(response)

    # use

    async def request(self, raw: bytes) -> HttpResponse:
        self.answered = False
        if self.closed or self.transport is None:
            raise HttpError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self._headers, self._body = {}, bytearray()
        self.transport.write(raw)
        return await self.waiter

    def _fail(self, error: HttpError) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _header_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("a header value cannot hold a line break")
    return value


class HttpPool:
    """Keep-alive connections to one origin, at most ``max_connections`` at once."""

    def __init__(self, base_url: str, max_connections: int = 100, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        self.authority = self.host if default_port else f"{self.host}:{self.port}"
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._ssl = ssl.create_default_context() if self.tls else None
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    def _request(self, target: str, headers: Mapping[str, str]) -> bytes:
        lines = [f"GET {self.prefix}{target} HTTP/1.1", f"Host: {self.authority}"]
        lines += [f"{name}: {_header_value(value)}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def get(self, target: str, headers: Mapping[str, str]) -> HttpResponse:
        """GET ``target`` (path and query); raises HttpError (HttpTimeout after ``timeout``)."""
        raw = self._request(target, headers)
        async with self._slots:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._exchange(raw)
            except TimeoutError as exc:
                raise HttpTimeout(f"no answer within {self.timeout:g} s") from exc

    async def _exchange(self, raw: bytes) -> HttpResponse:
        while self._idle:
            connection = self._idle.pop()
            try:
                return await self._send(connection, raw)
            except HttpError:
                if connection.answered:
                    raise
                # Closed by the server while idle: try the next (or a new) connection.
        return await self._send(await self._connect(), raw)

    async def _send(self, connection: _Connection, raw: bytes) -> HttpResponse:
        try:
            response = await connection.request(raw)
        except BaseException:
            # Failed, timed out or cancelled: what is left on it cannot be trusted.
            connection.close()
            raise
        if not connection.closed:
            self._idle.append(connection)
        return response

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection,
                self.host,
                self.port,
                ssl=self._ssl,
                server_hostname=self.host if self.tls else None,
            )
        except OSError as exc:
            raise HttpError(f"cannot connect to {self.authority}: {exc}") from exc
        return connection

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
