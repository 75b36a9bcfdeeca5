"""The workers' probe port: ``/healthz`` (alive), ``/readyz`` (able to work) and ``/metrics``.

Kubernetes-style probes (issue 9): ``/healthz`` answers 200 while the event loop turns;
``/readyz`` answers 200 only when PostgreSQL and Redis answer (each within the health timeout)
and every loop had a successful iteration within three of its intervals, else 503 with what is
wrong. A tiny asyncio HTTP/1.1 server (one request per connection): the workers serve nothing
else, and prometheus_client's own server runs in a thread that cannot ask the loop's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.asyncio import Redis

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8192
T = TypeVar("T")
# Checks given up on, kept referenced until they end (asyncio keeps only weak references).
_ABANDONED: set[asyncio.Task[Any]] = set()


async def answer_within(check: Coroutine[Any, Any, T], seconds: float) -> T:
    """``check``'s result, or TimeoutError after ``seconds``; the check is not cancelled but left
    to finish on its own timeouts. Cancelling a query on a silent server waits for a cancel
    request that is as stuck (asyncio.wait_for would), and cancelling a slow connect would keep
    the pool from ever getting its first connection on a loaded host."""
    task = asyncio.ensure_future(check)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task.result()
    _ABANDONED.add(task)
    task.add_done_callback(_forget)
    raise TimeoutError(f"no answer within {seconds} s")


def _forget(task: asyncio.Task[Any]) -> None:
    _ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: no "never retrieved" warning


@dataclass(slots=True)
class LoopHealth:
    """A loop's last successful iteration (monotonic seconds) and its interval."""

    name: str
    interval: float
    last_success: Callable[[], float | None]

    def stuck(self, now: float) -> bool:
        last = self.last_success()
        return last is None or now - last > 3 * max(self.interval, 1.0)


@dataclass(slots=True)
class Readiness:
    """What ``/readyz`` checks; filled in as the process comes up."""

    timeout: float = 1.5
    db: asyncpg.Pool | None = None
    redis: Redis | None = None
    loops: list[LoopHealth] = field(default_factory=list)
    # Why this process does no work although it runs (e.g. no platform configured).
    idle_reason: str | None = None
    started: float = field(default_factory=time.monotonic)

    async def report(self) -> tuple[bool, dict[str, object]]:
        if self.db is None or self.redis is None:
            return False, {"status": "starting", "detail": "waiting for PostgreSQL and Redis"}
        database, redis = await asyncio.gather(self._database(), self._redis())
        now = time.monotonic()
        stuck = [
            loop.name for loop in self.loops if loop.stuck(now) and self._past_start(loop, now)
        ]
        body: dict[str, object] = {"database": database, "redis": redis, "stuck_loops": stuck}
        if self.idle_reason is not None:
            body["idle"] = self.idle_reason
        ready = database and redis and not stuck and self.idle_reason is None
        body["status"] = "ready" if ready else "not_ready"
        return ready, body

    def _past_start(self, loop: LoopHealth, now: float) -> bool:
        # A loop that has not run yet is not stuck before its first three intervals are over.
        return loop.last_success() is not None or now - self.started > 3 * max(loop.interval, 1.0)

    async def _database(self) -> bool:
        assert self.db is not None
        try:
            await answer_within(self.db.fetchval("SELECT 1", timeout=self.timeout), self.timeout)
        except Exception:
            return False
        return True

    async def _redis(self) -> bool:
        assert self.redis is not None
        try:
            return bool(await answer_within(_ping(self.redis), self.timeout))
        except Exception:
            return False


async def _ping(redis: Redis) -> bool:
    return bool(await redis.ping())


class ProbeServer:
    """Serves the probes and the metrics of one worker process on ``port`` (0: any free one)."""

    def __init__(self, registry: CollectorRegistry, readiness: Readiness) -> None:
        self.registry = registry
        self.readiness = readiness
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            path = head.split(b" ", 2)[1].split(b"?", 1)[0].decode("ascii", "replace")
            status, content_type, body = await self._answer(path)
            writer.write(_response(status, content_type, body))
            await writer.drain()
        except (
            OSError,
            TimeoutError,
            IndexError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(self, path: str) -> tuple[int, str, bytes]:
        routes: dict[str, Callable[[], Awaitable[tuple[int, str, bytes]]]] = {
            "/healthz": self._alive,
            "/readyz": self._ready,
            "/metrics": self._metrics,
        }
        route = routes.get(path)
        if route is None:
            return 404, "application/json", b'{"status":"not_found"}'
        return await route()

    async def _alive(self) -> tuple[int, str, bytes]:
        return 200, "application/json", b'{"status":"alive"}'

    async def _ready(self) -> tuple[int, str, bytes]:
        ready, body = await self.readiness.report()
        return (200 if ready else 503), "application/json", orjson.dumps(body)

    async def _metrics(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)


def _response(status: int, content_type: str, body: bytes) -> bytes:
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "OK")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def start_probes(
    registry: CollectorRegistry, readiness: Readiness, port: int, what: str
) -> ProbeServer | None:
    """The probe server on ``port``; a port in use is logged, not fatal (the work matters more)."""
    probes = ProbeServer(registry, readiness)
    try:
        bound = await probes.start("0.0.0.0", port)  # noqa: S104 - probes come from outside
    except OSError as error:
        log.error(
            "%s: cannot serve /healthz, /readyz and /metrics on port %d: %s", what, port, error
        )
        return None
    log.info("%s serves /healthz, /readyz and /metrics on port %d", what, bound)
    return probes
