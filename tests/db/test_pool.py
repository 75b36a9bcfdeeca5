"""The pool's release (lumio.db.pool): no reset round trip, and still no transaction or
transaction-scoped state carried to the next user of a connection."""

from __future__ import annotations

import asyncio

from lumio.db.pool import create_pool


async def test_a_released_connection_carries_no_transaction(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as con:
            pid = await con.fetchval("SELECT pg_backend_pid()")
            timeout = await con.fetchval("SHOW statement_timeout")
            await con.execute("BEGIN")  # left open, as a bug would
            await con.execute("SET LOCAL statement_timeout = '1234ms'")
            await con.execute("CREATE TEMP TABLE released_probe (x int) ON COMMIT DROP")
        async with pool.acquire() as con:
            assert await con.fetchval("SELECT pg_backend_pid()") == pid  # the same session
            assert not con.is_in_transaction()
            assert await con.fetchval("SHOW statement_timeout") == timeout
            assert await con.fetchval("SELECT to_regclass('pg_temp.released_probe')") is None
    finally:
        await pool.close()


async def test_connections_are_handed_out_in_order_of_asking(database_url: str) -> None:
    """A caller that asks while others wait goes behind them. asyncpg's own queue let a
    newcomer take a connection released for a waiter that had not run yet, and the waiter
    queued again at the back: under load a few requests waited 10-50 times the rest."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    granted: list[int] = []

    async def request(number: int) -> None:
        async with pool.acquire():
            granted.append(number)
            await asyncio.sleep(0)

    try:
        requests = []
        for number in range(200):  # one arrives every loop iteration, as a server's do
            requests.append(asyncio.create_task(request(number)))
            await asyncio.sleep(0)
        await asyncio.gather(*requests)
    finally:
        await pool.close()
    assert granted == list(range(200))  # asyncpg's queue: 0, 2, 4, 6, ... (odd ones last)
