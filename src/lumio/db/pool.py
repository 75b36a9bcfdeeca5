"""The asyncpg pool, created once per process in a lifespan and injected where needed."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

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


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=min_size,
        max_size=max_size,
        command_timeout=10,
        # The API answers many short identical queries: keep prepared statements per connection.
        statement_cache_size=256,
    )
    assert pool is not None
    return pool


def database_url_named(url: str, name: str) -> str:
    """The same server's URL for another database (tests and benchmarks make their own)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
