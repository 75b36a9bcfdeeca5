"""The lean HTTP/1.1 keep-alive client of every hot path: platform polling, Spotify's poller.

Issue 15 measured, in one run of ``bench/http_clients_bench.py`` (one fake server in its own
process, 16 requests in flight, 20,000 GETs per client and round, uvloop, medians of 3 rounds on
the shared 2-core VM), the client process's CPU per request and its requests per second:

    client                        CPU us/request   x this client   requests/s   x this client
    this client (httptools)             44              1.00          18,561         1.00
    aiohttp 3.14.5 ClientSession       137              3.12           6,217         0.33
    httpx 0.28.1 AsyncClient         1,620             36.8              467         0.03

aiohttp, the well-kept library, needs more than 1.5 times this client's CPU, so this client
stays, shared by every hot path (issue 15's rule). httpx's pool walks every connection for each
request, which at the worker's concurrency costs 1-3 ms per request. Token, subscription and
other cold calls stay on httpx.

What it does: GET and POST (a body with Content-Length) with a few headers, keep-alive
connections per origin, TLS, answers with Content-Length or chunked, a timeout per request, a
cap on the answer's body (an error, or for callers that only read a prefix, the prefix). It
never follows redirects. ``HttpPool(..., connect_to=ip)`` connects to an address resolved and
checked beforehand while sending the URL's host in ``Host`` and TLS SNI (and checking the
certificate against it): what the webhook sender needs against DNS rebinding.

A connection that the server closed while idle (keep-alive timeout) is noticed when a request on
it fails before any byte of the answer: that request is sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast, overload
from urllib.parse import urlencode, urlsplit

import httptools

MAX_BODY_BYTES = 1 << 20
# No HEAD: its answer has no body whatever its Content-Length says, which the parser cannot know.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

Params = Mapping[str, str | list[str]] | list[tuple[str, str]]


class HttpError(Exception):
    """The request failed on the way (connection refused, reset, closed, bad answer)."""


class HttpTimeout(HttpError):
    pass


class Headers(dict[str, str]):
    """Answer headers under lower-case names, looked up in any case (a repeated one: the last)."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    @overload  # type: ignore[override]
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        return super().get(name.lower(), default)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status_code: int
    headers: Headers
    content: bytes
    # The body went past the pool's cap and ``content`` holds its first bytes only.
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, max_body_bytes: int, truncate: bool) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[HttpResponse] | None = None
        self.closed = False
        # Some of the answer arrived: sending the request again could repeat it.
        self.answered = False
        self._max_body = max_body_bytes
        self._truncate = truncate
        self._headers = Headers()
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
        if len(self._body) <= self._max_body:
            return
        if not self._truncate:
            self._fail(HttpError("answer body too large"))
            return
        # The rest is not read: the connection cannot carry another request.
        del self._body[self._max_body :]
        self._answer(truncated=True)
        self.close()

    def on_message_complete(self) -> None:
        self._answer(truncated=False)
        if not self.parser.should_keep_alive():
            self.close()

    # use

    async def request(self, raw: bytes) -> HttpResponse:
        self.answered = False
        if self.closed or self.transport is None:
            raise HttpError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self._headers, self._body = Headers(), bytearray()
        self.transport.write(raw)
        return await self.waiter

    def _answer(self, truncated: bool) -> None:
        if self.waiter is None or self.waiter.done():
            return
        status = self.parser.get_status_code()
        self.waiter.set_result(HttpResponse(status, self._headers, bytes(self._body), truncated))

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


def with_query(target: str, params: Params | None) -> str:
    """``target`` with ``params`` url-encoded after it (a list value repeats its name)."""
    if not params:
        return target
    items = params.items() if isinstance(params, Mapping) else params
    return f"{target}{'&' if '?' in target else '?'}{urlencode(list(items), doseq=True)}"


class HttpPool:
    """Keep-alive connections to one origin, at most ``max_connections`` at once.

    ``connect_to``: the address to connect to instead of resolving the URL's host (which still
    goes into ``Host``, SNI and the certificate check). ``truncate_body``: an answer longer than
    ``max_body_bytes`` comes back cut (``truncated``) instead of failing.
    """

    def __init__(
        self,
        base_url: str,
        max_connections: int = 100,
        timeout: float = 10.0,
        *,
        connect_to: str | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        truncate_body: bool = False,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if default_port else f"{host}:{self.port}"
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.connect_to = connect_to or self.host
        self._ssl = ssl.create_default_context() if self.tls else None
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._body_cap = (max_body_bytes, truncate_body)

    def _request(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> bytes:
        if method not in METHODS:
            raise ValueError(f"not an HTTP method: {method!r}")
        lines = [f"{method} {self.prefix}{target} HTTP/1.1", f"Host: {self.authority}"]
        lines += [f"{name}: {_header_value(value)}" for name, value in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def get(
        self, target: str, headers: Mapping[str, str], time_limit: float | None = None
    ) -> HttpResponse:
        """GET ``target`` (path and query); raises HttpError (HttpTimeout when out of time)."""
        return await self.request("GET", target, headers, b"", time_limit)

    async def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        time_limit: float | None = None,
    ) -> HttpResponse:
        """One request; raises HttpError (HttpTimeout after ``time_limit``, else the pool's)."""
        raw = self._request(method, target, headers, body)
        limit = self.timeout if time_limit is None else time_limit
        async with self._slots:
            try:
                async with asyncio.timeout(limit):
                    return await self._exchange(raw)
            except TimeoutError as exc:
                raise HttpTimeout(f"no answer within {limit:g} s") from exc

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
                lambda: _Connection(*self._body_cap),
                self.connect_to,
                self.port,
                ssl=self._ssl,
                server_hostname=self.host if self.tls else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise HttpError(f"cannot connect to {self.authority}: {exc}") from exc
        return connection

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


class HttpClient:
    """``HttpPool``s by origin, for callers that speak to more than one (or take full URLs)."""

    def __init__(self, max_connections: int = 100, timeout: float = 10.0) -> None:
        self.max_connections = max_connections
        self.timeout = timeout
        self._pools: dict[str, HttpPool] = {}

    def _pool(self, url: str) -> tuple[HttpPool, str]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        pool = self._pools.get(origin)
        if pool is None:
            try:
                pool = HttpPool(origin, self.max_connections, self.timeout)
            except ValueError as exc:
                raise HttpError(str(exc)) from exc
            self._pools[origin] = pool
        target = parts.path or "/"
        return pool, f"{target}?{parts.query}" if parts.query else target

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        time_limit: float | None = None,
    ) -> HttpResponse:
        """One request to a full URL (``params`` added to its query); raises HttpError."""
        pool, target = self._pool(url)
        return await pool.request(
            method, with_query(target, params), headers or {}, body, time_limit
        )

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()
