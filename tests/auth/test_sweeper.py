"""SessionSweeper: expired sessions go in bounded batches; live ones stay; the API runs it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from fastapi import FastAPI

from lumio.auth import repository as auth_repository
from lumio.auth.tasks import SessionSweeper
from lumio.kit import secrets
from tests.conftest import Factory

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def add_sessions(db: asyncpg.Pool, factory: Factory, expires: datetime, count: int) -> None:
    _, owner = await factory.account()
    for _ in range(count):
        token_hash = secrets.token_hash(secrets.new_session_token())
        await auth_repository.insert_session(db, token_hash, owner.user_id, None, expires)


async def test_expired_sessions_are_swept_in_batches_and_live_ones_stay(
    db: asyncpg.Pool, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_sessions(db, factory, NOW - timedelta(days=1), 7)
    await add_sessions(db, factory, NOW, 1)  # expires exactly now: gone
    await add_sessions(db, factory, NOW + timedelta(seconds=1), 3)
    sweeper = SessionSweeper(db, batch_size=3, clock=lambda: NOW)
    statements: list[int] = []
    delete = auth_repository.delete_expired_sessions

    async def counted(db: asyncpg.Pool, now: datetime, limit: int) -> int:
        statements.append(deleted := await delete(db, now, limit))
        return deleted

    monkeypatch.setattr(auth_repository, "delete_expired_sessions", counted)
    await sweeper.start(loops=1)
    assert statements == [3, 3, 2]  # bounded batches until one comes back short
    left = await db.fetch("SELECT expires_at FROM sessions")
    assert sorted(r["expires_at"] for r in left) == [NOW + timedelta(seconds=1)] * 3
    assert sweeper.last_success is not None


async def test_a_sweep_with_nothing_expired_deletes_nothing(
    db: asyncpg.Pool, factory: Factory
) -> None:
    await add_sessions(db, factory, NOW + timedelta(hours=1), 2)
    await SessionSweeper(db, clock=lambda: NOW).start(loops=1)
    assert await db.fetchval("SELECT count(*) FROM sessions") == 2


async def test_the_api_process_sweeps_hourly(app: FastAPI) -> None:
    sweeper = app.state.session_sweeper
    assert isinstance(sweeper, SessionSweeper)
    assert sweeper.interval == timedelta(hours=1)
    # Started with the lifespan: it has run (or is running) its first sweep.
    for _ in range(100):
        if sweeper.last_success is not None:
            break
        await asyncio.sleep(0.05)
    assert sweeper.last_success is not None
    assert not sweeper.stopping
