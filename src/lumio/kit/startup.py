"""Starting while PostgreSQL or Redis is away: wait for it, saying so once (DESIGN §9, issue 9).

A process that exits when a dependency is briefly down makes a service manager restart it in a
loop, and an outage of the database would take every process with it. Instead each process
logs one line, retries with backoff, and comes up when the dependency returns. A schema that is
not at head is not an outage: it is refused at once with the line saying what to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.db.pool import DbTimeouts, asyncpg_dsn
from lumio.db.schema import check_schema
from lumio.kit.clock import backoff_seconds

log = logging.getLogger(__name__)

# What "unreachable" looks like from asyncpg: refused, reset, timed out, starting up, shut down.
UNREACHABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)


def where(url: str) -> str:
    """host:port of a URL, without the credentials, for log lines."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or ''}".rstrip(":")


async def schema_checked(url: str, timeouts: DbTimeouts) -> None:
    """One attempt: connect and check the schema (raises UNREACHABLE or SchemaNotAtHead)."""
    conn = await asyncpg.connect(
        asyncpg_dsn(url), timeout=timeouts.connect, command_timeout=timeouts.statement
    )
    try:
        await check_schema(conn)
    finally:
        await conn.close(timeout=timeouts.connect)


async def until_ready(
    what: str,
    attempt: Callable[[], Awaitable[object]],
    errors: tuple[type[Exception], ...],
    retry_max: float,
) -> None:
    """Run ``attempt`` until it succeeds; the first failure is logged, the recovery too."""
    failures = 0
    while True:
        try:
            await attempt()
        except errors as error:
            failures += 1
            if failures == 1:
                log.warning(
                    "%s unreachable (%s): waiting for it, retrying with backoff", what, error
                )
            await asyncio.sleep(max(0.2, backoff_seconds(failures, 0.5, retry_max)))
            continue
        if failures:
            log.info("%s reachable again after %d attempts", what, failures + 1)
        return


async def wait_for_database(url: str, timeouts: DbTimeouts, retry_max: float = 10.0) -> None:
    """Until PostgreSQL answers with the schema at head; SchemaNotAtHead is raised at once."""
    await until_ready(
        f"PostgreSQL at {where(url)}",
        lambda: schema_checked(url, timeouts),
        UNREACHABLE,
        retry_max,
    )


async def wait_for_redis(redis: Redis, url: str, retry_max: float = 10.0) -> None:
    await until_ready(f"Redis at {where(url)}", redis.ping, (RedisError, OSError), retry_max)


async def until_stopped(work: Awaitable[object], stopping: asyncio.Event) -> bool:
    """Run ``work`` unless a stop comes first (then cancel it); True when it completed."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()
    return True
