"""The pool's release (lumio.db.pool): no reset round trip, and still no transaction or
transaction-scoped state carried to the next user of a connection."""

from __future__ import annotations

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
