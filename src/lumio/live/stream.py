"""One browser's live stream: the account's events as Server-Sent Events.

Frames (``event:`` names), each with a JSON ``data`` line:

- ``hello`` once the stream is set up: re-read the state now (events before it were not seen);
- ``status``: an event of DESIGN §5, as published (a hint: re-read what it names);
- ``resync`` after the server subscribed to Redis again: events may have been lost, re-read;
- ``unavailable`` while Redis cannot be reached: updates are paused, the state still reads;
- ``heartbeat`` every ``heartbeat_seconds``, so that a client can tell a dead connection;
- ``bye`` with a ``reason`` just before the server ends the stream: ``signed_out`` (the
  credential is gone), ``account_changed`` (another tab switched the active account),
  ``forbidden`` (the role lost ``spotify:read``) or ``shutdown`` (this server is stopping;
  reconnect to another).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from lumio.kit.permissions import Permission
from lumio.kit.principal import Principal
from lumio.kit.pubsub import Kind, Received


class Verdict(StrEnum):
    """What a periodic re-check of the stream's credential found."""

    ALLOWED = "allowed"
    SIGNED_OUT = "signed_out"
    ACCOUNT_CHANGED = "account_changed"
    FORBIDDEN = "forbidden"


Recheck = Callable[[], Awaitable[Verdict]]


def verdict(current: Principal | None, account_id: UUID) -> Verdict:
    """May a stream opened for ``account_id`` go on, now that its credential reads ``current``?"""
    if current is None:
        return Verdict.SIGNED_OUT
    if current.account_id != account_id:
        return Verdict.ACCOUNT_CHANGED
    if Permission.SPOTIFY_READ.value not in current.permissions:
        return Verdict.FORBIDDEN
    return Verdict.ALLOWED


def frame(event: str, data: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def status_frame(payload: bytes) -> bytes | None:
    """The published event, passed on when it is a JSON object (anything else is dropped)."""
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return frame("status", event) if isinstance(event, dict) else None


@dataclass(slots=True)
class StreamConfig:
    heartbeat_seconds: float = 15.0
    recheck_seconds: float = 10.0
    # A quiet stream wakes this often to recheck and send heartbeats (both multiples of it);
    # a departing client and a stopping server wake it at once (``Subscription.wake``).
    poll_seconds: float = 5.0
    # How long a browser waits before reconnecting after the connection drops (SSE ``retry``).
    client_retry_ms: int = 2000


@dataclass(slots=True)
class AccountStream:
    """The frames of one account's stream, until ``stopping()`` says so or the recheck fails."""

    # The account's channel as ``follow`` would yield it (the process's LiveHub gives it).
    source: Callable[[float], AsyncGenerator[Received, None]]
    account_id: UUID
    recheck: Recheck
    stopping: Callable[[], bool]
    config: StreamConfig = field(default_factory=StreamConfig)

    async def frames(self) -> AsyncGenerator[bytes, None]:
        loop = asyncio.get_running_loop()
        next_heartbeat = loop.time() + self.config.heartbeat_seconds
        next_recheck = loop.time() + self.config.recheck_seconds
        greeted = False
        source = self.source(self.config.poll_seconds)
        async with contextlib.aclosing(source) as received:
            async for item in received:
                if self.stopping():
                    yield frame("bye", {"reason": "shutdown"})
                    return
                out = self._translate(item, greeted)
                greeted = greeted or item.kind in (Kind.SUBSCRIBED, Kind.LOST)
                if out is not None:
                    yield out
                now = loop.time()
                if now >= next_recheck:
                    next_recheck = now + self.config.recheck_seconds
                    verdict = await self.recheck()
                    if verdict is not Verdict.ALLOWED:
                        yield frame("bye", {"reason": verdict.value})
                        return
                if now >= next_heartbeat:
                    next_heartbeat = now + self.config.heartbeat_seconds
                    yield frame("heartbeat", {})

    def _translate(self, item: Received, greeted: bool) -> bytes | None:
        if item.kind is Kind.MESSAGE:
            return status_frame(item.data)
        if item.kind is Kind.SUBSCRIBED:
            hello = {"accountId": str(self.account_id), "live": True}
            retry = f"retry: {self.config.client_retry_ms}\n".encode()
            return retry + frame("hello", hello) if not greeted else frame("resync", {})
        if item.kind is Kind.LOST:
            unavailable = frame("unavailable", {"detail": "live updates paused: Redis is down"})
            if greeted:
                return unavailable
            hello = {"accountId": str(self.account_id), "live": False}
            return frame("hello", hello) + unavailable
        return None


class EventStreamResponse(Response):
    """Streams frames until they end or the client goes away.

    Unlike Starlette's StreamingResponse, it never cancels the frame source on a disconnect
    (which would cancel redis-py's reader): the source is asked to stop at its next item.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        frames: Callable[[Callable[[], bool]], AsyncGenerator[bytes, None]],
        on_close: Callable[[], None] = lambda: None,
        on_gone: Callable[[], None] = lambda: None,
    ) -> None:
        # No body and so no Content-Length, as StreamingResponse does.
        self.status_code = 200
        self.background = None
        self.frames = frames
        self.on_close = on_close
        # Called when the client disconnects, so that a waiting frame source looks at once.
        self.on_gone = on_gone
        # Proxies such as nginx must pass each frame on at once.
        self.init_headers({"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone, self.on_gone))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async with contextlib.aclosing(self.frames(gone.is_set)) as frames:
                async for chunk in frames:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    if gone.is_set():
                        return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away while we were writing (ASGI 2.4 servers say so)
        finally:
            self.on_close()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def _watch_disconnect(
    receive: Receive, gone: asyncio.Event, on_gone: Callable[[], None]
) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            on_gone()
            return
