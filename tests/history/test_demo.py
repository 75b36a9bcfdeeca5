"""`lumio dev` seeds plausible, clearly generated history for the demo account, once."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx

from lumio.dev.history import seed_demo_history
from tests.conftest import Factory

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_generated_history_is_marked_and_seeded_once(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory
) -> None:
    account, owner = await factory.account()
    written = await seed_demo_history(db, account, NOW)
    assert 5 <= written <= 40
    assert await seed_demo_history(db, account, NOW) == 0
    rows = await db.fetch("SELECT * FROM stream_sessions WHERE account_id = $1", account)
    assert len(rows) == written
    assert all(r["generated"] and r["ended_at"] is not None for r in rows)
    assert all(r["peak_viewers"] > 0 and r["viewer_samples"] >= 80 for r in rows)
    page = (await api.get("/v1/broadcasts?limit=100", headers=owner.bearer)).json()
    assert all(s["generated"] for b in page["items"] for s in b["sessions"])
    assert any(len(b["platforms"]) == 2 for b in page["items"]), "some streams are simulcasts"
    stats = (
        await api.get("/v1/streams/stats?to=2026-12-01T12:00:00Z", headers=owner.bearer)
    ).json()
    assert stats["streams"] > 0 and stats["hoursLive"] > 1
