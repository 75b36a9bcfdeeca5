"""The seed's six functions and the batch writers, against real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from lumio.channel_status import repository as repo
from lumio.channel_status.schemas import (
    ChannelStatus,
    OfflineWrite,
    OnlineWrite,
    StreamDataWrite,
)
from lumio.kit.views import rows_response, views_response
from lumio.platforms.base import Platform
from tests.conftest import Factory

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def online(
    account: UUID, platform: Platform, at: datetime, title: str = "t", viewers: int = 1
) -> OnlineWrite:
    return OnlineWrite(
        account, platform, title, "Just Chatting", viewers, at - timedelta(minutes=5), at
    )


async def test_get_status_is_ordered_by_platform(db: asyncpg.Pool, factory: Factory) -> None:
    account, _ = await factory.account()
    for platform in (Platform.YOUTUBE, Platform.TWITCH, Platform.TROVO, Platform.KICK):
        await repo.set_online(db, online(account, platform, T0))
    rows = await repo.get_status(db, account)
    assert [r.platform for r in rows] == ["kick", "trovo", "twitch", "youtube"]
    assert all(r.is_online and r.updated_at == T0 for r in rows)


async def test_set_online_then_offline(db: asyncpg.Pool, factory: Factory) -> None:
    account, _ = await factory.account()
    applied = await repo.set_online(db, online(account, Platform.TWITCH, T0, "Hello", 12))
    assert applied is not None and applied.changed
    (row,) = await repo.get_status(db, account)
    assert (row.stream_title, row.category, row.viewer_count) == ("Hello", "Just Chatting", 12)
    assert row.started_at == T0 - timedelta(minutes=5)
    assert await repo.is_any_online(db, account)

    later = T0 + timedelta(minutes=1)
    gone = await repo.set_offline(db, OfflineWrite(account, Platform.TWITCH, later))
    assert gone is not None and gone.changed
    (row,) = await repo.get_status(db, account)
    assert not row.is_online and row.started_at is None and row.updated_at == later
    assert not await repo.is_any_online(db, account)


async def test_second_set_online_is_not_a_transition(db: asyncpg.Pool, factory: Factory) -> None:
    account, _ = await factory.account()
    await repo.set_online(db, online(account, Platform.KICK, T0))
    again = await repo.set_online(db, online(account, Platform.KICK, T0 + timedelta(seconds=30)))
    assert again is not None and not again.changed
    offline_twice = await repo.set_offline(db, OfflineWrite(account, Platform.YOUTUBE, T0))
    assert offline_twice is not None and not offline_twice.changed


async def test_update_stream_data_only_touches_online_rows(
    db: asyncpg.Pool, factory: Factory
) -> None:
    account, _ = await factory.account()
    await repo.set_offline(db, OfflineWrite(account, Platform.TROVO, T0))
    at = T0 + timedelta(seconds=10)
    write = StreamDataWrite(account, Platform.TROVO, "new", "cat", 5, at)
    assert await repo.update_stream_data(db, write) is None
    (row,) = await repo.get_status(db, account)
    assert row.stream_title is None and not row.is_online

    await repo.set_online(db, online(account, Platform.TROVO, at, "old", 3))
    later = at + timedelta(seconds=10)
    changed = await repo.update_stream_data(
        db, StreamDataWrite(account, Platform.TROVO, "new", "Just Chatting", 3, later)
    )
    assert changed is not None and changed.changed
    same = await repo.update_stream_data(
        db, StreamDataWrite(account, Platform.TROVO, "new", "Just Chatting", 3, later)
    )
    assert same is not None and not same.changed
    (row,) = await repo.get_status(db, account)
    assert (row.stream_title, row.viewer_count, row.updated_at) == ("new", 3, later)
    assert row.started_at == at - timedelta(minutes=5), "update keeps the stream's start"


async def test_an_older_observation_changes_nothing(db: asyncpg.Pool, factory: Factory) -> None:
    account, _ = await factory.account()
    await repo.set_online(db, online(account, Platform.TWITCH, T0, "now"))
    stale = T0 - timedelta(seconds=1)
    assert await repo.set_offline(db, OfflineWrite(account, Platform.TWITCH, stale)) is None
    assert await repo.set_online(db, online(account, Platform.TWITCH, stale, "old")) is None
    write = StreamDataWrite(account, Platform.TWITCH, "old", None, 0, stale)
    assert await repo.update_stream_data(db, write) is None
    (row,) = await repo.get_status(db, account)
    assert row.is_online and row.stream_title == "now" and row.updated_at == T0


async def test_get_all_online_accounts_groups_by_account(
    db: asyncpg.Pool, factory: Factory
) -> None:
    a, _ = await factory.account("A")
    b, _ = await factory.account("B")
    c, _ = await factory.account("C")
    await repo.set_online_many(
        db,
        [
            online(a, Platform.YOUTUBE, T0),
            online(a, Platform.KICK, T0),
            online(b, Platform.TWITCH, T0),
        ],
    )
    await repo.set_offline(db, OfflineWrite(c, Platform.TWITCH, T0))
    found = {o.account_id: o.platforms for o in await repo.get_all_online_accounts(db)}
    assert found == {a: ("kick", "youtube"), b: ("twitch",)}


async def test_batch_writers_are_one_statement_for_many_rows(
    db: asyncpg.Pool, factory: Factory
) -> None:
    accounts = [(await factory.account(f"acc{i}"))[0] for i in range(5)]
    writes = [online(a, p, T0) for a in accounts for p in Platform]
    applied = await repo.set_online_many(db, writes)
    assert len(applied) == 20 and all(x.changed for x in applied)
    offline = [OfflineWrite(a, Platform.KICK, T0 + timedelta(seconds=1)) for a in accounts]
    applied = await repo.set_offline_many(db, offline)
    assert {x.account_id for x in applied} == set(accounts) and all(x.changed for x in applied)
    online_now = await repo.get_all_online_accounts(db)
    assert all(o.platforms == ("trovo", "twitch", "youtube") for o in online_now)


async def test_duplicate_keys_in_a_batch_keep_the_newest(
    db: asyncpg.Pool, factory: Factory
) -> None:
    account, _ = await factory.account()
    writes = [
        online(account, Platform.TWITCH, T0 + timedelta(seconds=2), "newest"),
        online(account, Platform.TWITCH, T0, "oldest"),
    ]
    applied = await repo.set_online_many(db, writes)
    assert len(applied) == 1
    (row,) = await repo.get_status(db, account)
    assert row.stream_title == "newest"


async def test_constraints_keep_bad_data_out(db: asyncpg.Pool, factory: Factory) -> None:
    account, _ = await factory.account()
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "INSERT INTO channel_status (account_id, platform, is_online, updated_at)"
            " VALUES ($1, 'tiktok', false, now())",
            account,
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "INSERT INTO channel_status (account_id, platform, is_online, started_at, updated_at)"
            " VALUES ($1, 'kick', false, now(), now())",
            account,
        )
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await repo.set_online(db, online(UUID(int=1), Platform.KICK, T0))
    assert await repo.get_status(db, account) == []


async def test_deleting_an_account_removes_its_status(db: asyncpg.Pool, factory: Factory) -> None:
    account, _ = await factory.account()
    await repo.set_online(db, online(account, Platform.KICK, T0))
    await db.execute("DELETE FROM accounts WHERE id = $1", account)
    assert await repo.get_status(db, account) == []


async def test_status_rows_are_the_view_and_render_as_it(
    db: asyncpg.Pool, factory: Factory
) -> None:
    """The API renders rows without a model per row: their columns must be the view's fields."""
    account, _ = await factory.account()
    await repo.set_online(db, online(account, Platform.KICK, T0, "Hi", 3))
    await repo.set_offline(db, OfflineWrite(account, Platform.TWITCH, T0))
    rows = await repo.get_status_rows(db, account)
    assert [list(row.keys()) for row in rows] == [list(ChannelStatus.model_fields)] * 2
    views = [ChannelStatus.model_validate(dict(row)) for row in rows]
    assert rows_response(ChannelStatus, rows).body == views_response(views).body
    assert rows[0].stream_title == "Hi" and rows[1].started_at is None
    with pytest.raises(AttributeError):
        _ = rows[0].no_such_column
