"""Sessions, segments and samples written by the platform worker (fake Kick, real databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from lumio.channels import service as channels
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.worker import PlatformPoller
from lumio.history import repository as history
from lumio.platforms.base import Platform
from tests.history.conftest import Rig


async def samples(db: asyncpg.Pool, session_id: object) -> list[int]:
    rows = await db.fetch(
        "SELECT viewers FROM viewer_samples WHERE session_id = $1 ORDER BY observed_at", session_id
    )
    return [r["viewers"] for r in rows]


async def test_a_stream_from_go_live_to_end(rig: Rig) -> None:
    await rig.poller.run_once()
    assert await rig.sessions() == []

    rig.kick.set_live(rig.channel_id)
    await rig.poll_after(70)
    (session,) = await rig.sessions()
    assert session["ended_at"] is None and session["title"] == "Hello"
    (online,) = await rig.received()
    assert online["reason"] == "went_online" and online["session_id"] == str(session["id"])
    assert "duration_seconds" not in online

    # A title change is a new segment.
    rig.kick.set_title(rig.channel_id, "Second part")
    rig.kick.set_viewers(rig.channel_id, 40)
    await rig.poll_after(40)
    segments = await rig.db.fetch(
        "SELECT title, category FROM stream_segments WHERE session_id = $1 ORDER BY started_at",
        session["id"],
    )
    assert [(s["title"], s["category"]) for s in segments] == [
        ("Hello", "IRL"),
        ("Second part", "IRL"),
    ]

    # A 60-second drop inside the grace: still one session.
    rig.kick.set_offline(rig.channel_id)
    for _ in range(3):
        await rig.poll_after(20)
    rig.kick.set_live(rig.channel_id, title="Second part", viewers=25)
    await rig.poll_after(20)
    assert len(await rig.sessions()) == 1
    assert not {"went_online", "went_offline"} & {e["reason"] for e in await rig.received()}

    # The end: ended_at set once, peak and mean from the samples.
    rig.kick.set_offline(rig.channel_id)
    await rig.until_offline()
    (ended,) = await rig.sessions()
    assert ended["ended_at"] is not None and not ended["ended_inferred"]
    values = await samples(rig.db, session["id"])
    assert values == [10, 40, 25]
    assert ended["peak_viewers"] == 40
    assert ended["viewer_sum"] / ended["viewer_samples"] == sum(values) / len(values)
    offline = [e for e in await rig.received() if e["reason"] == "went_offline"]
    assert len(offline) == 1
    assert offline[0]["session_id"] == str(session["id"])
    duration = (ended["ended_at"] - ended["started_at"]).total_seconds()
    assert offline[0]["duration_seconds"] == int(duration) > 0
    # Later polls change nothing.
    await rig.poll_after(120)
    assert await rig.sessions() == [ended]


async def test_a_worker_outage_over_the_end_infers_it_once(rig: Rig) -> None:
    rig.kick.set_live(rig.channel_id)
    await rig.poller.run_once()
    (session,) = await rig.sessions()
    last_seen = session["last_seen_at"]

    # The worker dies while live; the stream ends; a new worker starts an hour later.
    rig.kick.set_offline(rig.channel_id)
    restarted = PlatformPoller(
        rig.poller.adapter, rig.db, rig.poller.redis, rig.poller.config, WorkerMetrics(), rig.clock
    )
    rig.poller = restarted
    rig.clock.advance(3600)
    await history.close_orphans(rig.db)  # boot recovery leaves a channel still said live alone
    assert (await rig.sessions())[0]["ended_at"] is None
    await rig.until_offline()
    (ended,) = await rig.sessions()
    assert ended["id"] == session["id"]
    assert ended["ended_inferred"] is True
    assert ended["ended_at"] == last_seen


async def test_a_worker_outage_inside_the_stream_continues_it(rig: Rig) -> None:
    rig.kick.set_live(rig.channel_id, viewers=5)
    await rig.poller.run_once()
    rig.clock.advance(3600)
    await history.close_orphans(rig.db)
    await rig.poll_after(1)
    (session,) = await rig.sessions()
    assert session["ended_at"] is None and session["viewer_samples"] == 2


async def test_relinking_another_channel_closes_the_session(rig: Rig) -> None:
    rig.kick.set_live(rig.channel_id)
    await rig.poller.run_once()
    other = rig.kick.add_channel("another", title="Other", viewers=3, live=True)
    await channels.link_channel(
        rig.db, rig.poller.redis, rig.http, rig.settings, rig.account, Platform.KICK, other.name
    )
    (closed,) = await rig.sessions()
    assert closed["ended_at"] is not None and closed["ended_inferred"] is True
    # The new channel's stream is a session of its own. (The re-link stamped the old row
    # offline at wall-clock time; the worker's clock must not be behind it.)
    rig.clock.now = max(rig.clock.now, datetime.now(UTC)) + timedelta(seconds=1)
    await rig.db.execute("UPDATE platform_channels SET next_poll_at = $1", rig.clock())
    await rig.poller.run_once()
    sessions = await rig.sessions()
    assert len(sessions) == 2 and sessions[1]["ended_at"] is None
    assert sessions[1]["title"] == "Other"


async def test_unlinking_closes_the_session(rig: Rig) -> None:
    rig.kick.set_live(rig.channel_id)
    await rig.poller.run_once()
    await channels.unlink_channel(rig.db, rig.poller.redis, rig.account, Platform.KICK)
    (closed,) = await rig.sessions()
    assert closed["ended_at"] is not None and closed["ended_inferred"] is True
