"""A few weeks of made-up stream history for the demo account, so that the History view of a
first `lumio dev` run is not empty. Every session written here has ``generated`` set, and the
API and the dashboard mark it as generated demo data; the simulator's streams add real sessions
through the worker as they happen.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from lumio.history import repository
from lumio.history.schemas import GeneratedSession
from lumio.platforms.base import Platform

TITLES = [
    ("Speedrun practice: any%", "Celeste"),
    ("Chill chat and coffee", "Just Chatting"),
    ("Ranked grind to diamond", "Rocket League"),
    ("Cozy farm evening", "Stardew Valley"),
    ("Blind playthrough, part 3", "Hollow Knight"),
]
SAMPLE_EVERY = timedelta(minutes=1)


def _curve(rng: random.Random, minutes: int, peak: int) -> list[int]:
    """Viewers climb for the first half hour, hold with noise, and fade in the last minutes."""
    values = []
    for m in range(minutes):
        rise = min(1.0, (m + 1) / 30)
        fade = min(1.0, (minutes - m) / 15)
        wobble = 1 + 0.08 * math.sin(m / 7) + rng.uniform(-0.05, 0.05)
        values.append(max(0, round(peak * rise * fade * wobble)))
    return values


def _stream(
    rng: random.Random, platform: Platform, start: datetime, minutes: int, peak: int
) -> GeneratedSession:
    first, second = rng.sample(TITLES, 2)
    switch = start + timedelta(minutes=rng.randint(minutes // 3, 2 * minutes // 3))
    viewers = _curve(rng, minutes, peak)
    return GeneratedSession(
        platform=platform,
        stream_id=f"generated-{platform.value}-{int(start.timestamp())}",
        started_at=start,
        ended_at=start + SAMPLE_EVERY * (minutes - 1),
        segments=[(start, *first), (switch, *second)],
        samples=[(start + SAMPLE_EVERY * m, v) for m, v in enumerate(viewers)],
    )


def generate(now: datetime, days: int = 21, seed: int = 7) -> list[GeneratedSession]:
    """About four evening streams a week on Twitch, every other one simulcast on YouTube."""
    rng = random.Random(seed)
    sessions: list[GeneratedSession] = []
    for day in range(days, 0, -1):
        if rng.random() > 0.55:
            continue
        date = (now - timedelta(days=day)).astimezone(UTC).date()
        start = datetime(date.year, date.month, date.day, 18, tzinfo=UTC)
        start += timedelta(minutes=rng.randint(0, 120))
        minutes = rng.randint(90, 240)
        sessions.append(_stream(rng, Platform.TWITCH, start, minutes, rng.randint(80, 400)))
        if rng.random() < 0.5:
            late = start + timedelta(minutes=rng.randint(1, 5))
            sessions.append(
                _stream(rng, Platform.YOUTUBE, late, minutes - 10, rng.randint(20, 120))
            )
    return sessions


async def seed_demo_history(pool: asyncpg.Pool, account_id: UUID, now: datetime) -> int:
    """Seed once (an account that has generated history keeps it); returns sessions written."""
    if await repository.has_generated(pool, account_id):
        return 0
    sessions = generate(now)
    async with pool.acquire() as conn, conn.transaction():
        for session in sessions:
            await repository.insert_generated(conn, account_id, session)
    return len(sessions)
