"""Benchmark of stream history (issue 12).

    .venv/bin/python -m bench.history_bench [--channels 10000] [--cycles 3] [--duration 10]

On a database of its own (embedded servers unless DATABASE_URL / REDIS_URL are set):

1. storage: 500 channel-hours of samples every 30 s; bytes per live channel-hour of
   ``viewer_samples`` (table and indexes) raw, then of ``viewer_samples_5m`` once retention has
   downsampled all of it;
2. worker: ``--channels`` live channels polled through the real ``PlatformPoller`` (the
   platform answer comes from an in-process stub, so only the worker's own work is timed), full
   cycles with history on and off alternating in the same run: CPU of this process per
   observation (PostgreSQL runs elsewhere) and history rows written per second;
3. API: ``lumio api`` serving ``GET /v1/streams/{id}`` (raw, a 12-hour session at one sample
   every 30 s: 1,440 points) to ``bench/loadgen.py`` at ``--connections`` connections.

Prints PASS/FAIL per target and writes JSON into ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from bench import stubs
from bench.api_bench import Processes, bench_database, wait_ready
from bench.common import RESULTS_DIR, ROOT, cpu_seconds
from bench.stubs import BenchClock
from lumio.accounts import service as accounts
from lumio.auth.service import create_api_key
from lumio.db.pool import create_pool
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.state_machine import DetectorConfig, PollIntervals
from lumio.detection.worker import PlatformPoller, PollerConfig
from lumio.dev.fakes.server import free_port
from lumio.embedded import embedded_services
from lumio.history import repository as history
from lumio.kit.resources import create_redis
from lumio.platforms.base import (
    LiveStream,
    Observation,
    ObservationKind,
)

CPU_TARGET = 1.25
P99_TARGET_MS = 20.0
T0 = datetime(2026, 11, 1, tzinfo=UTC)

SEED_CHANNELS = """
WITH seed AS (SELECT g AS n, gen_random_uuid() AS account_id FROM generate_series(1, $1) g),
a AS (INSERT INTO accounts (id, name) SELECT account_id, 'Bench ' || n FROM seed)
INSERT INTO platform_channels (account_id, platform, channel_id, display_name, next_poll_at)
SELECT account_id, 'kick', n::text, 'bench' || n, $2 FROM seed
"""
SEED_SESSIONS = """
WITH s AS (
    INSERT INTO stream_sessions (account_id, platform, stream_id, started_at, ended_at,
                                 last_seen_at, title)
    SELECT $1, 'twitch', 'bench-' || g, t.at, t.at + $4::interval, t.at + $4::interval, 'Bench'
    FROM generate_series(1, $3) g
    CROSS JOIN LATERAL (SELECT $2::timestamptz + make_interval(days => g) AS at) t
    RETURNING id, started_at
)
INSERT INTO viewer_samples (session_id, observed_at, viewers)
SELECT s.id, s.started_at + make_interval(secs => 30 * k), (100 + (k * 37) % 400)::int
FROM s CROSS JOIN generate_series(0, $5 - 1) k
"""
SIZE = "SELECT pg_total_relation_size($1::regclass)"


class StubAdapter(stubs.StubAdapter):
    """Every channel live with a changing viewer count: the platform's side costs nothing."""

    def seen(self, channel_id: str, now: datetime) -> Observation:
        tick = int(now.timestamp()) // 30
        viewers = (int(channel_id) * 7 + tick) % 5000
        stream = LiveStream("Bench stream", "Just Chatting", viewers, T0, channel_id)
        return Observation(channel_id, ObservationKind.LIVE, now, stream)


async def _no_history(*_: object) -> dict[object, object]:
    return {}


@dataclass
class Cycle:
    history: bool
    cpu_s: float
    wall_s: float
    observations: int
    history_rows: int


async def storage(db: asyncpg.Pool, account: UUID) -> dict[str, float]:
    hours = 500
    await db.execute(SEED_SESSIONS, account, T0, hours, timedelta(hours=1), 120)
    await db.execute("VACUUM ANALYZE viewer_samples")
    raw = await db.fetchval(SIZE, "viewer_samples")
    while await history.downsample(db, datetime(2100, 1, 1, tzinfo=UTC), 100):
        pass
    await db.execute("VACUUM ANALYZE viewer_samples_5m")
    downsampled = await db.fetchval(SIZE, "viewer_samples_5m")
    await db.execute("TRUNCATE stream_sessions CASCADE")
    return {
        "raw_bytes_per_channel_hour": raw / hours,
        "downsampled_bytes_per_channel_hour": downsampled / hours,
    }


async def worker_cycles(
    db: asyncpg.Pool, redis_url: str, channels: int, cycles: int
) -> list[Cycle]:
    clock = BenchClock(T0)
    await db.execute(SEED_CHANNELS, channels, clock())
    redis = create_redis(redis_url)
    config = PollerConfig(
        DetectorConfig(timedelta(seconds=120), 1),
        PollIntervals(),
        timedelta(seconds=60),
        timedelta(seconds=300),
    )
    poller = PlatformPoller(StubAdapter(clock), db, redis, config, WorkerMetrics(), clock)
    record = history.record_batch
    results: list[Cycle] = []
    try:
        # The first cycle opens the sessions (went_online): a warm-up, not measured.
        for n in range(1 + 2 * cycles):
            on = n == 0 or n % 2 == 1
            setattr(history, "record_batch", record if on else _no_history)  # noqa: B010 (typed as the real one)
            # Past the jittered live interval (30 s ± 10 %): every channel is due again.
            clock.now += timedelta(seconds=40)
            rows_before = await db.fetchval("SELECT count(*) FROM viewer_samples")
            cpu, wall, polled = time.process_time(), time.perf_counter(), 0
            while done := await poller.run_once():
                polled += done
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            samples = await db.fetchval("SELECT count(*) FROM viewer_samples") - rows_before
            if n:
                # Each observation: a session row updated and a sample inserted.
                results.append(Cycle(on, cpu, wall, polled, 2 * samples))
            print(f"cycle {n}: history {'on ' if on else 'off'} {polled} observations, "
                  f"{cpu:.2f} s CPU, {wall:.2f} s", flush=True)  # fmt: skip
    finally:
        setattr(history, "record_batch", record)  # noqa: B010
        await redis.aclose()
    return results


async def seed_api(db: asyncpg.Pool) -> tuple[str, list[UUID]]:
    user = await accounts.create_user(db, "bench-history@bench.lumio.test", "bench password 1")
    account = await accounts.create_account(db, "History bench", "bench-history@bench.lumio.test")
    key = await create_api_key(db, user, account, "bench")
    await db.execute(SEED_SESSIONS, account, T0, 2, timedelta(hours=12), 1440)
    ended, live = [
        r["id"]
        for r in await db.fetch(
            "SELECT id FROM stream_sessions WHERE account_id = $1 ORDER BY started_at", account
        )
    ]
    # A live session is read from PostgreSQL on every request (an ended one is cached).
    await db.execute("UPDATE stream_sessions SET ended_at = NULL WHERE id = $1", live)
    return key.key, [ended, live]


def api_load(
    env: dict[str, str], work: Path, key: str, sessions: list[UUID], args: argparse.Namespace
) -> dict[str, Any]:
    """Load on the ended session's detail (cached after the first read), then the live one's."""
    port = free_port()
    with Processes() as processes:
        command = [str(Path(sys.executable).parent / "lumio"), "api", "--port", str(port)]
        server = processes.start("api", command, env, work, port)
        wait_ready(server)
        return {
            name: _load(server.process.pid, port, key, session_id, work, args)
            for name, session_id in zip(("ended", "live"), sessions, strict=True)
        }


def _load(
    pid: int, port: int, key: str, session_id: UUID, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    request = (
        f"GET /v1/streams/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\n\r\n"
    )
    config = work / "loadgen.json"
    config.write_text(json.dumps({
        "host": "127.0.0.1", "port": port, "connections": args.connections,
        "duration": args.duration, "timeout": 5.0, "requests": [request],
    }))  # fmt: skip
    cpu_before = cpu_seconds(pid)
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=args.duration + 60, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = cpu_seconds(pid) - cpu_before
    # Contention-proof: what one request costs the API process, whatever else runs.
    result["api_cpu_ms_per_request"] = cpu / max(result["requests"], 1) * 1e3
    return result


def summarise(cycles: list[Cycle]) -> dict[str, float]:
    def per_observation(on: bool) -> float:
        chosen = [c for c in cycles if c.history is on]
        return sum(c.cpu_s for c in chosen) / sum(c.observations for c in chosen) * 1e6

    on = [c for c in cycles if c.history]
    return {
        "cpu_us_per_observation_history_on": per_observation(True),
        "cpu_us_per_observation_history_off": per_observation(False),
        "cpu_ratio": per_observation(True) / per_observation(False),
        "history_rows_per_second": sum(c.history_rows for c in on) / sum(c.wall_s for c in on),
        "observations_per_second_history_on": sum(c.observations for c in on)
        / sum(c.wall_s for c in on),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lumio-history-")))
        admin_url, redis_url = stack.enter_context(
            embedded_services(
                work / "embedded", os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
            )
        )
        url = stack.enter_context(bench_database(admin_url))

        async def database_part() -> tuple[dict[str, float], list[Cycle], str, list[UUID]]:
            db = await create_pool(url, min_size=2, max_size=10)
            try:
                seeded = await db.fetchval(
                    "INSERT INTO accounts (name) VALUES ('storage') RETURNING id"
                )
                sizes = await storage(db, seeded)
                cycles = await worker_cycles(db, redis_url, args.channels, args.cycles)
                key, sessions = await seed_api(db)
                return sizes, cycles, key, sessions
            finally:
                await db.close()

        sizes, cycles, key, sessions = asyncio.run(database_part())
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url,
               "LUMIO_DATA_DIR": str(work / "data"), "PYTHONUNBUFFERED": "1"}  # fmt: skip
        load = api_load(env, work, key, sessions, args)
    result = {
        **sizes, **summarise(cycles), "api": load, "channels": args.channels,
        "load_average": os.getloadavg(),
    }  # fmt: skip
    required = args.channels / 30 * 2
    checks = {
        f"worker CPU with history <= {CPU_TARGET:.2f}x without": result["cpu_ratio"] <= CPU_TARGET,
        f"history rows/s >= {required:,.0f} (needed at {args.channels:,} channels / 30 s)":
            result["history_rows_per_second"] >= required,
        f"GET /v1/streams/{{id}} raw 1,440 points p99 < {P99_TARGET_MS} ms at -c{args.connections}":
            load["ended"]["p99_ms"] < P99_TARGET_MS and load["ended"]["non_2xx"] == 0,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"history-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({**result, "checks": checks}, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
