"""Alembic environment: async engine on asyncpg, migrations written as explicit DDL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


# pg_advisory_lock key of `lumio migrate`: concurrent runs (two deploys, two pods) take turns,
# and the second finds the schema at head and does nothing.
MIGRATE_LOCK = 0x6C756D696F  # "lumio"


async def _run_async() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_async_engine(url, poolclass=pool.NullPool)
    # The lock lives on a connection of its own, for the whole run: each migration commits
    # separately on the other one.
    async with engine.connect() as lock:
        await lock.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATE_LOCK})")
        try:
            async with engine.connect() as connection:
                await connection.run_sync(_run)
        finally:
            await lock.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATE_LOCK})")
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `lumio migrate`")
asyncio.run(_run_async())
