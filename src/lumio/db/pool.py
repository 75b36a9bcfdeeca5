"""The asyncpg pool, created once per process in a lifespan and injected where needed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy


class _TimeoutSettings(Protocol):
    """The database group of the settings (``lumio.kit.settings``, which the db package sits
    below and does not import)."""

    @property
    def connect_timeout(self) -> timedelta: ...
    @property
    def acquire_timeout(self) -> timedelta: ...
    @property
    def statement_timeout(self) -> timedelta: ...


class _Settings(Protocol):
    @property
    def db(self) -> _TimeoutSettings: ...


# What PostgreSQL (or asyncpg, encoding an argument) says of a value it will not store. Such an
# error is the rows' fault, not the database's: a batch writer splits its batch to find them.
# Connection errors are not among them: those are retried whole.
REFUSED_DATA = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg.exceptions.ProgramLimitExceededError,
    asyncpg.exceptions._base.DataError,
    UnicodeError,
)

# Anything a query can run on: the pool, a connection, or a connection taken from the pool.
Executor = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes plain postgresql:// URLs; strip a SQLAlchemy driver suffix if one was given."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@dataclass(frozen=True, slots=True)
class DbTimeouts:
    """How long anything may wait on PostgreSQL (issue 9: a black-holed server must not hang
    a request for the driver's 60 s default; settings ``LUMIO_DB_*_TIMEOUT_SECONDS``)."""

    connect: float = 5.0
    acquire: float = 5.0
    statement: float = 5.0

    @classmethod
    def of(cls, settings: _Settings) -> DbTimeouts:
        db = settings.db
        return cls(
            db.connect_timeout.total_seconds(),
            db.acquire_timeout.total_seconds(),
            db.statement_timeout.total_seconds(),
        )


class TimedPool(asyncpg.Pool):
    """asyncpg's pool with a default timeout on ``acquire()``, which asyncpg leaves unbounded
    (every ``pool.fetch`` acquires: with all connections stuck, callers would queue forever),
    and connections handed out first come, first served.

    asyncpg queues free connections in an ``asyncio.Queue``, which lets a newcomer take a
    connection that was just released for a waiter that has not run yet; the waiter then queues
    again at the back. Under load a few requests waited 30-200 ms while most waited none
    (``bench/api_bench.py``: p50 2 ms, p99 150-200 ms with a pool of 4). A fair semaphore of
    the pool's size now orders the callers, so only the queue's length decides a wait.
    """

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout
        self._turns = asyncio.Semaphore(kwargs["max_size"])

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)

    # asyncpg's own signatures, which take the timeout as an argument; ``_acquire`` is the
    # private step behind every ``acquire()`` (``async with`` and ``await`` alike), untyped.
    async def _acquire(self, timeout: float | None) -> Any:  # noqa: ASYNC109
        if self._turns.locked():
            timeout = await self._wait_turn(timeout)
        else:
            await self._turns.acquire()  # returns at once: no timer
        try:
            return await super()._acquire(timeout)  # type: ignore[misc]
        except BaseException:
            self._turns.release()
            raise

    async def _wait_turn(self, timeout: float | None) -> float | None:  # noqa: ASYNC109
        """Wait in line; what is left of ``timeout`` for the connection itself."""
        started = time.monotonic()
        async with asyncio.timeout(timeout):
            await self._turns.acquire()
        return None if timeout is None else max(timeout - (time.monotonic() - started), 0.001)

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        # Not yet released (asyncpg ignores a second release): this caller holds a turn.
        held = getattr(connection, "_con", None) is not None
        try:
            await super().release(connection, timeout=timeout)
        finally:
            if held:
                self._turns.release()


async def _released(_: asyncpg.Connection) -> None:
    """Nothing more to undo when a connection goes back to the pool.

    asyncpg rolls back an open transaction before calling this; its default reset then sends
    ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on every release: a second
    round trip for every pooled query. Without it, ``bench/api_bench.py`` measured 1.5x the
    requests per second (the baseline shares this pool: 5,400 -> 8,000) and a third less CPU per
    request, in the API and in PostgreSQL (issue 15). Nothing here leaves session state behind:
    no session ``SET``, no cursor outside a transaction, no ``LISTEN`` on a pooled connection,
    advisory locks only for a transaction (``pg_try_advisory_xact_lock``).
    """


async def create_pool(
    url: str, *, min_size: int = 2, max_size: int = 10, timeouts: DbTimeouts | None = None
) -> asyncpg.Pool:
    """The process's pool. ``min_size=0`` connects nothing until first used, so a process can
    start (and answer 503) while PostgreSQL is away."""
    limits = timeouts or DbTimeouts()
    pool = TimedPool(
        asyncpg_dsn(url),
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        acquire_timeout=limits.acquire,
        timeout=limits.connect,
        # Client side: a query on a connection whose server went silent ends; server side: a
        # statement stuck behind a lock ends too.
        command_timeout=limits.statement + 1,
        server_settings={"statement_timeout": str(int(limits.statement * 1000))},
        # The API answers many short identical queries: keep prepared statements per connection.
        statement_cache_size=256,
        reset=_released,
    )
    await pool
    return pool


def database_url_named(url: str, name: str) -> str:
    """The same server's URL for another database (tests and benchmarks make their own)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
