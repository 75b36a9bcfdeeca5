"""Request-head limits for `lumio api`, enforced while the head is read (uvicorn has none).

uvicorn bounds idle keep-alive connections and concurrency, but not the size or count of request
headers, nor how long a client may take to send them: an 8 MB header was read in full, and a
connection that sent nothing (or half a head) stayed open. This protocol counts the head's bytes
as they arrive and answers 431 as soon as they pass the limit, and 408 when the head has not
arrived in time (which also closes connections that never send a request). A body that has not
arrived in full within its own time limit after the head gets 408 too (a client trickling a
body would otherwise hold its connection, and the request's task, for as long as it likes).
"""

from __future__ import annotations

import asyncio

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# How long a refused client may go on sending (and be ignored) before the connection closes.
LINGER_SECONDS = 2.0


class _HeadTooLarge(Exception):
    pass


def _answer(status: bytes, detail: bytes) -> bytes:
    """A problem+json answer, like every other error of the API."""
    code, _, title = status.decode().partition(" ")
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": int(code),
            "code": _CODES[int(code)],
            "detail": detail.decode(),
        }
    )
    head = b"HTTP/1.1 " + status + b"\r\ncontent-type: application/problem+json\r\n"
    head += b"cache-control: no-store\r\nconnection: close\r\n"
    return head + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body


_CODES = {408: "REQUEST_TIMEOUT", 431: "REQUEST_HEADER_FIELDS_TOO_LARGE"}


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = 16 * 1024
    max_headers = 100
    head_timeout_seconds = 10.0
    body_timeout_seconds = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._discarding = False
        self._start_head()

    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._counted = 0
        self._header_count = 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_seconds, self._head_late)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(b"408 Request Timeout", b"the request head did not arrive in time")

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_late(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        cycle = getattr(self, "cycle", None)
        if cycle is not None and cycle.response_started:
            self.transport.close()
            return
        self._refuse(b"408 Request Timeout", b"the request body did not arrive in time")

    def _refuse(self, status: bytes, detail: bytes) -> None:
        """Answer and close; what the client is still sending is read and dropped for a moment
        (a lingering close), since closing with unread data resets the connection and the
        client would never see the answer."""
        self._stop_head_timer()
        self._discarding = True
        self.transport.write(_answer(status, detail))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        self._stop_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        # Every byte of the earlier chunks belonged to the head (it had not ended).
        if self._in_head and self._head_bytes > self.max_head_bytes:
            self._too_large()
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)

    def _too_large(self) -> None:
        detail = f"request heads are limited to {self.max_headers} headers and "
        detail += f"{self.max_head_bytes} bytes"
        self._refuse(b"431 Request Header Fields Too Large", detail.encode())

    def send_400_response(self, msg: str) -> None:
        if (self._in_head and self._counted > self.max_head_bytes) or (
            self._header_count > self.max_headers
        ):
            self._too_large()
            return
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._counted += size
        if self._counted > self.max_head_bytes or self._header_count > self.max_headers:
            # Raised inside the parser: it stops, and send_400_response answers 431 instead.
            raise _HeadTooLarge

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        # Cancelled by on_message_complete, at once for a request without a body.
        self._body_timer = self.loop.call_later(self.body_timeout_seconds, self._body_late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._stop_body_timer()
        super().on_message_complete()


def limited_protocol(
    max_head_bytes: int,
    max_headers: int,
    head_timeout_seconds: float,
    body_timeout_seconds: float = LimitedHttpToolsProtocol.body_timeout_seconds,
) -> type[LimitedHttpToolsProtocol]:
    return type(
        "ConfiguredHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {
            "max_head_bytes": max_head_bytes,
            "max_headers": max_headers,
            "head_timeout_seconds": head_timeout_seconds,
            "body_timeout_seconds": body_timeout_seconds,
        },
    )
