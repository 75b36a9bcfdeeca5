"""Bad data from a platform never freezes its batch (issue 9, DESIGN §9).

Five Kick channels are polled in one batch; one of them answers with a poisoned value (a NUL in
its title or category, 2^31 or -1 viewers, a 1 MB title, a sentinel or far-off start time). The
poisoned value is normalised, and the four healthy channels go live and keep updating. Below
the normalisation, a value PostgreSQL still refuses is isolated by halving the batch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from lumio.channel_status import repository as status
from lumio.channel_status.schemas import ChannelStatus
from lumio.channels import repository as channels
from lumio.detection import worker as worker_module
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.worker import PlatformPoller, PollerConfig
from lumio.dev.fakes.kick import FakeKickState
from lumio.dev.fakes.kick import create_app as kick_app
from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.state import FakeChannel
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.platforms.registry import build_adapter

HEALTHY = 4
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Batch:
    clock: Clock
    kick: FakeKickState
    poller: PlatformPoller
    db: asyncpg.Pool
    healthy: list[tuple[UUID, FakeChannel]]
    poisoned: tuple[UUID, FakeChannel]

    async def poll(self, seconds: float = 61) -> None:
        self.clock.advance(seconds)
        await self.db.execute("UPDATE platform_channels SET next_poll_at = $1", self.clock())
        assert await self.poller.run_once() == HEALTHY + 1

    async def row(self, account: UUID) -> ChannelStatus:
        [row] = await status.get_status(self.db, account)
        return row


@pytest.fixture(scope="module")
def kick() -> Iterator[tuple[FakeKickState, str, Clock]]:
    clock = Clock()
    state = FakeKickState(clock=lambda: clock().timestamp())
    with FakeServer(kick_app(state)) as url:
        yield state, url, clock


@pytest.fixture
async def batch(
    kick: tuple[FakeKickState, str, Clock],
    settings: Settings,
    db: asyncpg.Pool,
    redis: Redis,
) -> AsyncIterator[Batch]:
    state, url, clock = kick
    state.reset()
    clock.now = NOW
    await redis.delete("lumio:budget:kick")
    configured = settings.updated(
        {
            "kick": {
                "client_id": state.client_id,
                "client_secret": state.client_secret,
                "api_base": url,
                "id_base": url,
                "timeout": timedelta(seconds=2),
            },
            "detection": {"poll_batch_wait": timedelta(0)},
        }
    )
    linked: list[tuple[UUID, FakeChannel]] = []
    accounts = await db.fetch(
        "INSERT INTO accounts (name) SELECT 'poison ' || n FROM generate_series(0, $1) n "
        "RETURNING id",
        HEALTHY,
    )
    for n, record in enumerate(accounts):
        account: UUID = record["id"]
        channel = state.add_channel(f"streamer{n}", title=f"Title {n}", category="IRL", viewers=n)
        state.set_live(channel.channel_id)
        await channels.link(db, account, Platform.KICK, channel.channel_id, channel.name)
        linked.append((account, channel))
    async with httpx.AsyncClient() as client:
        adapter = build_adapter(Platform.KICK, configured, client)
        config = PollerConfig.from_settings(configured, Platform.KICK)
        poller = PlatformPoller(adapter, db, redis, config, WorkerMetrics(), clock)
        yield Batch(clock, state, poller, db, linked[:HEALTHY], linked[HEALTHY])


async def assert_healthy_keep_updating(batch: Batch) -> None:
    for account, channel in batch.healthy:
        row = await batch.row(account)
        assert row.is_online and row.stream_title == channel.title, row
    for n, (_, channel) in enumerate(batch.healthy):
        batch.kick.set_title(channel.channel_id, f"Second title {n}")
    await batch.poll()
    for n, (account, _) in enumerate(batch.healthy):
        assert (await batch.row(account)).stream_title == f"Second title {n}"


Poison = Callable[[FakeKickState, str], None]


def poison_with(attribute: str, value: Any) -> Poison:
    """Set a value the fake's own control API would refuse, as a broken platform sends it."""

    def poison(state: FakeKickState, channel_id: str) -> None:
        with state._lock:
            setattr(state._channels[channel_id], attribute, value)

    return poison


POISONS: dict[str, tuple[Poison, Callable[[ChannelStatus], bool]]] = {
    "nul in title": (
        poison_with("title", "Live\u0000 now"),
        lambda row: row.stream_title == "Live now",
    ),
    "nul in category": (
        poison_with("category", "Just\u0000Chatting"),
        lambda row: row.category == "JustChatting",
    ),
    "viewers 2^31": (poison_with("viewers", 2**31), lambda row: row.viewer_count is None),
    "viewers -1": (poison_with("viewers", -1), lambda row: row.viewer_count is None),
    "1 MB title": (
        poison_with("title", "x" * 1_000_000),
        lambda row: row.stream_title == "x" * 1000,
    ),
    "kick's zero start time": (
        poison_with("started_at", None),
        lambda row: row.is_online and row.started_at is None,
    ),
    "start time a year ahead": (
        poison_with("started_at", (NOW + timedelta(days=365)).timestamp()),
        lambda row: row.is_online and row.started_at is None,
    ),
}


@pytest.mark.parametrize("poison", list(POISONS))
async def test_a_poisoned_value_is_normalised_and_the_batch_goes_on(
    batch: Batch, poison: str
) -> None:
    apply, stored_right = POISONS[poison]
    account, channel = batch.poisoned
    apply(batch.kick, channel.channel_id)
    await batch.poll()
    row = await batch.row(account)
    assert row.is_online
    assert stored_right(row), row
    await assert_healthy_keep_updating(batch)


async def test_a_row_the_database_refuses_is_isolated_by_halving_the_batch(
    batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if normalisation missed something: PostgreSQL itself refuses the NUL.
    monkeypatch.setattr(worker_module, "normalise", lambda observation, now: observation)
    account, channel = batch.poisoned
    poison_with("title", "Live\u0000 now")(batch.kick, channel.channel_id)
    await batch.poll()
    assert await status.get_status(batch.db, account) == []
    error = await batch.db.fetchval(
        "SELECT last_error FROM platform_channels WHERE account_id = $1", account
    )
    assert error.startswith("bad_data: ")
    await assert_healthy_keep_updating(batch)
