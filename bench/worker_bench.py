"""Benchmark of `lumio worker` over 100,000 linked channels on the four fake platforms (issue 3).

    .venv/bin/python -m bench.worker_bench [--duration 60] [--channels-per-platform 25000]

Seeds a database of its own (25,000 accounts, each linking a Twitch, YouTube, Kick and Trovo
channel: 100,000 rows of platform_channels, set-based SQL), starts one fake per platform as a
process of its own (``bench/fakes_server.py``, seeded with the same channel ids, every
``--live-every``-th live) and one real ``lumio worker`` process on production intervals, and then:

1. backlog: every channel is due at once; the time until each has been polled once gives the
   worker's capacity in observations per second;
2. steady state: the schedule is spread evenly over one offline interval and the worker runs for
   ``--duration`` seconds: observations per second, lateness, and requests per channel per cycle
   for each platform, from the fakes' own request statistics and the worker's poll counters.

Before the worker starts, the batch writers are timed against the single-row writers in the same
database: ``set_online_many`` / ``set_offline_many`` over ``--writer-rows`` rows in one statement
each, against a loop of single-row ``set_online``. The worker's peak memory is its VmHWM (peak
resident set) from /proc. Prints PASS/FAIL per target and writes JSON into ``bench/results/``.
Everything it starts (the fakes, the worker, the database, its Redis keys) is stopped, dropped or
deleted on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform as platform_module
import re
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from redis import Redis

from bench import common
from bench.common import (
    RESULTS_DIR,
    ROOT,
    VENV_BIN,
    BenchError,
    Child,
    cpu_seconds,
    exit_status,
    memory_mb,
    run_guarded,
    spawn_logged,
)
from bench.fakes_server import FIRST_ID, YOUTUBE_QUOTA
from lumio.channel_status import repository as status
from lumio.channel_status.schemas import OfflineWrite, OnlineWrite
from lumio.db.pool import (
    create_pool,
)
from lumio.dev.fakes import kick, trovo, twitch, youtube
from lumio.dev.fakes.server import free_port
from lumio.embedded import embedded_services
from lumio.platforms.base import Platform

# Issue 3's targets. Requests per channel per cycle: poll requests / channel polls.
REQUEST_TARGETS = {Platform.TWITCH: 0.01, Platform.KICK: 0.02, Platform.YOUTUBE: 0.02}
WRITER_RATIO_TARGET = 10.0
MEMORY_TARGET_MB = 300.0

READY_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
# A channel this late past its due time counts as "late" in the steady-state samples.
LATE_SECONDS = 5.0
# The spread's UPDATEs hold the rows they move until they commit (the worker's claims skip them)
# and their now() is the transaction's start: the schedule starts this much later, so that the
# time the statements take is not counted as lateness.
SPREAD_MARGIN_SECONDS = 4.0
SPREAD_SLICES = 20
# Issue 15: in the steady state no channel more than this fraction of its interval past due.
LATENESS_TARGET = 0.10


# --- processes and the database ----------------------------------------------------------------


class Children(common.Children):
    """The processes the benchmark started, logging into ``log_dir``; stopped on exit."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__(STOP_TIMEOUT)
        self.log_dir = log_dir

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Child:
        log_path = self.log_dir / f"{name}.log"
        process = spawn_logged(command, env, log_path, stdin=subprocess.DEVNULL)
        return self.add(Child(name, process, log_path))


BENCH_DATABASE_PREFIX = "lumio_workerbench_"


def bench_database(admin_url: str) -> contextlib.AbstractContextManager[str]:
    """This benchmark's database (push_bench uses it too), migrated, dropped on exit."""
    return common.bench_database(
        admin_url, BENCH_DATABASE_PREFIX, command_timeout=120, migrate=True, shield=True
    )


def redis_url_with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return url
    return urlunsplit(parts._replace(path=f"/{db}"))


def budget_keys(redis: Redis) -> list[str]:
    keys = [f"lumio:budget:{p.value}" for p in Platform]
    keys += [k.decode() for k in redis.scan_iter(match="lumio:quota:youtube:*")]
    return keys


@contextlib.contextmanager
def clean_budgets(redis_url: str) -> Iterator[None]:
    """The shared budgets and YouTube quota count start empty and are deleted afterwards."""
    redis = Redis.from_url(redis_url, socket_timeout=5)
    try:
        redis.delete(*budget_keys(redis))
        yield
    finally:
        with contextlib.suppress(Exception):
            redis.delete(*budget_keys(redis))
        redis.close()


SEED = """
WITH seed AS (
    SELECT g AS n, gen_random_uuid() AS account_id FROM generate_series(0, $1 - 1) AS g
), added AS (
    INSERT INTO accounts (id, name) SELECT account_id, 'Bench ' || n FROM seed
)
INSERT INTO platform_channels (account_id, platform, channel_id, display_name, next_poll_at)
SELECT s.account_id, p.platform,
       CASE WHEN p.platform = 'youtube' THEN 'UCbench' || lpad(s.n::text, 17, '0')
            ELSE (p.first_id + s.n)::text END,
       'bench' || s.n, now()
FROM seed s CROSS JOIN unnest($2::text[], $3::bigint[]) AS p(platform, first_id)
"""
WRITER_ACCOUNTS = """
INSERT INTO accounts (id, name)
SELECT gen_random_uuid(), 'Writer ' || g FROM generate_series(1, $1) AS g
RETURNING id
"""
PROGRESS = """
SELECT platform,
       count(*) AS linked,
       count(last_polled_at) AS polled,
       count(*) FILTER (WHERE next_poll_at < now() - make_interval(secs => $1)) AS late,
       coalesce(extract(epoch FROM now() - min(next_poll_at)), 0)::float8 AS behind,
       count(*) FILTER (WHERE next_poll_at < now()) AS past_due,
       count(*) FILTER (WHERE lateness > $5::float8) AS over_target,
       greatest(coalesce(max(lateness), 0), 0)::float8 AS worst_fraction
FROM (
    SELECT platform, last_polled_at, next_poll_at,
           -- How late the next poll is, as a fraction of the channel's own interval (the one its
           -- detector phase asks for: DESIGN §3).
           extract(epoch FROM now() - next_poll_at)::float8 / CASE detector_state->>'phase'
               WHEN 'live' THEN $3::float8 WHEN 'grace' THEN $4::float8
               WHEN 'pending_online' THEN $4::float8 ELSE $2::float8
           END AS lateness
    FROM platform_channels
) AS channels
GROUP BY platform ORDER BY platform
"""
# Rows the worker holds (leased, or locked by its writes) are skipped, never waited for: waiting
# on the worker's row locks in another order could deadlock with it.
# One slice of the channels per statement ($3 of SPREAD_SLICES, by account): one statement over
# all 100,000 rows held them for 4-6 s on a busy machine, and a worker's write that met one of
# them ran into its statement timeout, leaving its batch leased for a whole lease.
SPREAD = """
WITH free AS (
    SELECT account_id, platform FROM platform_channels
    WHERE lease_token IS NULL AND abs(hashtext(account_id::text)) % $4 = $3
    FOR UPDATE SKIP LOCKED
)
UPDATE platform_channels pc
SET next_poll_at = now() + make_interval(secs => $2 + random() * $1)
FROM free
WHERE pc.account_id = free.account_id AND pc.platform = free.platform
"""


async def seed(url: str, per_platform: int) -> float:
    started = time.monotonic()
    platforms = list(Platform)
    first_ids = [FIRST_ID.get(p, 0) for p in platforms]
    conn = await asyncpg.connect(url, timeout=10, command_timeout=600)
    try:
        await conn.execute(SEED, per_platform, [p.value for p in platforms], first_ids)
        # Fresh statistics, so that the worker's first claims plan like later ones.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.monotonic() - started


# --- the batch writers against the single-row writers ------------------------------------------


WRITER_KINDS = ("set_online, new rows", "set_online, existing rows", "set_offline, existing rows")


async def _timed(work: Awaitable[object]) -> float:
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


async def time_writers(url: str, rows: int, single_rows: int) -> dict[str, Any]:
    """Rows per second of the batch writers (one statement over ``rows`` rows) against a loop of
    the single-row writers (over ``single_rows`` other rows), on one connection each, for new rows
    (insert) and existing ones (update): set_online, set_online again, then set_offline."""
    conn = await asyncpg.connect(url, timeout=10, command_timeout=600)
    try:
        ids = [r["id"] for r in await conn.fetch(WRITER_ACCOUNTS, rows + single_rows + 1)]
        batch_ids, single_ids, warm_id = ids[:rows], ids[rows:-1], ids[-1]
        started_at = datetime.now(UTC) - timedelta(minutes=5)

        def online(account: uuid.UUID, observed: datetime, viewers: int) -> OnlineWrite:
            return OnlineWrite(
                account, Platform.TWITCH, "Bench", "Just Chatting", viewers, started_at, observed
            )

        async def single_online(accounts: list[uuid.UUID], viewers: int) -> None:
            observed = datetime.now(UTC)
            for account in accounts:
                await status.set_online(conn, online(account, observed, viewers))

        async def single_offline(accounts: list[uuid.UUID]) -> None:
            observed = datetime.now(UTC)
            for account in accounts:
                await status.set_offline(conn, OfflineWrite(account, Platform.TWITCH, observed))

        def batch_online(viewers: int) -> Awaitable[object]:
            observed = datetime.now(UTC)
            return status.set_online_many(conn, [online(a, observed, viewers) for a in batch_ids])

        def batch_offline() -> Awaitable[object]:
            observed = datetime.now(UTC)
            writes = [OfflineWrite(a, Platform.TWITCH, observed) for a in batch_ids]
            return status.set_offline_many(conn, writes)

        # Warm the prepared statements, so that neither side pays for planning.
        await single_online([warm_id], 1)
        await single_offline([warm_id])
        await status.set_online_many(conn, [online(warm_id, datetime.now(UTC), 2)])
        await status.set_offline_many(
            conn, [OfflineWrite(warm_id, Platform.TWITCH, datetime.now(UTC))]
        )

        batch = [
            await _timed(batch_online(1)),
            await _timed(batch_online(2)),
            await _timed(batch_offline()),
        ]
        single = [
            await _timed(single_online(single_ids, 1)),
            await _timed(single_online(single_ids, 2)),
            await _timed(single_offline(single_ids)),
        ]
        written = await conn.fetchval(
            "SELECT count(*) FROM channel_status WHERE account_id = ANY($1) AND NOT is_online", ids
        )
        # Cascades to channel_status: the worker's run starts without these rows.
        await conn.execute("DELETE FROM accounts WHERE id = ANY($1)", ids)
    finally:
        await conn.close()
    if written != len(ids):
        raise BenchError(f"the writers left {written} of {len(ids)} rows offline")
    kinds = {}
    for kind, batch_s, single_s in zip(WRITER_KINDS, batch, single, strict=True):
        batch_rate, single_rate = rows / batch_s, single_rows / single_s
        kinds[kind] = {
            "batch_seconds": batch_s,
            "single_seconds": single_s,
            "batch_rows_per_s": batch_rate,
            "single_rows_per_s": single_rate,
            "ratio": batch_rate / single_rate,
        }
    return {"rows": rows, "single_rows": single_rows, "kinds": kinds}


# --- reading the fakes and the worker ----------------------------------------------------------

METRIC_LINE = re.compile(r"^(lumio_[a-z_]+)\{([^}]*)\}\s+([0-9.eE+-]+)$")


def parse_metrics(text: str) -> dict[tuple[str, str], float]:
    """{(metric, "label=value,..."): value} for the worker's lumio_* samples."""
    found: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = METRIC_LINE.match(line)
        if match:
            labels = ",".join(sorted(match[2].replace('"', "").split(",")))
            found[(match[1], labels)] = float(match[3])
    return found


def metric(sample: dict[tuple[str, str], float], name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples that carry ``labels``."""
    wanted = {f"{k}={v}" for k, v in labels.items()}
    return sum(v for (n, ls), v in sample.items() if n == name and wanted <= set(ls.split(",")))


@dataclass
class FakeCounts:
    """What one fake says it served: poll requests, plus confirmations and 429s where it applies."""

    poll_requests: int
    confirmations: int = 0
    feed_requests: int = 0
    throttled: int = 0
    ids_requested: int = 0


def fake_counts(platform: Platform, stats: dict[str, Any]) -> FakeCounts:
    if platform is Platform.TWITCH:
        return FakeCounts(
            poll_requests=stats["by_endpoint"].get("streams", 0),
            throttled=stats["by_status"].get("429", 0),
            ids_requested=stats["stream_ids_requested"],
        )
    if platform is Platform.YOUTUBE:
        requests = stats["requests"]
        videos = requests.get("videos", 0)
        return FakeCounts(
            poll_requests=requests.get("feed", 0) + videos,
            confirmations=videos,
            feed_requests=requests.get("feed", 0),
            ids_requested=sum(stats["video_batch_sizes"]),
        )
    path = (
        "GET /public/v1/channels" if platform is Platform.KICK else "POST /openplatform/channels/id"
    )
    return FakeCounts(poll_requests=stats["requests"].get(path, 0))


@dataclass
class Snapshot:
    at: float
    metrics: dict[tuple[str, str], float]
    fakes: dict[Platform, FakeCounts]
    worker_cpu: float
    fakes_cpu: float
    machine_busy: float
    machine_total: float

    def polls(self, platform: Platform | None = None) -> float:
        if platform is None:
            return metric(self.metrics, "lumio_polls_total")
        return metric(self.metrics, "lumio_polls_total", platform=platform.value)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat; zeros elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / tick, sum(fields) / tick


@dataclass
class Rig:
    """The running worker processes (each with its metrics port) and fakes."""

    url: str
    workers: list[tuple[Child, int]]
    fakes: dict[Platform, tuple[Child, int]]
    client: httpx.AsyncClient
    peak_rss_mb: dict[str, float] = field(default_factory=dict)

    def check_alive(self) -> None:
        for child, _ in [*self.workers, *self.fakes.values()]:
            child.check_alive()

    async def snapshot(self) -> Snapshot:
        merged: dict[tuple[str, str], float] = {}
        for _, port in self.workers:
            text = (await self.client.get(f"http://127.0.0.1:{port}/metrics")).text
            for key, value in parse_metrics(text).items():
                merged[key] = merged.get(key, 0.0) + value
        fakes = {}
        for platform, (_, port) in self.fakes.items():
            answer = await self.client.get(f"http://127.0.0.1:{port}/_control/stats")
            fakes[platform] = fake_counts(platform, answer.json())
        busy, total = machine_cpu()
        return Snapshot(
            time.monotonic(),
            merged,
            fakes,
            sum(cpu_seconds(child.process.pid) for child, _ in self.workers),
            sum(cpu_seconds(child.process.pid) for child, _ in self.fakes.values()),
            busy,
            total,
        )

    def sample_memory(self) -> None:
        for child, _ in self.workers:
            peak = memory_mb(child.process.pid).get("VmHWM", 0.0)
            self.peak_rss_mb[child.name] = max(self.peak_rss_mb.get(child.name, 0.0), peak)


async def wait_for_metrics(rig: Rig) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    for child, port in rig.workers:
        while True:
            rig.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if (await rig.client.get(f"http://127.0.0.1:{port}/metrics")).is_success:
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"{child.name} did not serve metrics in time:\n{child.log_tail()}")
            await asyncio.sleep(0.2)


PROGRESS_FIELDS = (
    "linked",
    "polled",
    "late",
    "behind",
    "past_due",
    "over_target",
    "worst_fraction",
)


async def progress(db: asyncpg.Pool, interval: float) -> dict[str, dict[str, float]]:
    intervals = (interval, interval / 2, interval / 4)
    rows = await db.fetch(PROGRESS, LATE_SECONDS, *intervals, LATENESS_TARGET)
    return {r["platform"]: {k: r[k] for k in PROGRESS_FIELDS} for r in rows}


async def run_phases(rig: Rig, args: argparse.Namespace) -> dict[str, Any]:
    db = await create_pool(rig.url, min_size=1, max_size=2)
    try:
        await wait_for_metrics(rig)
        start = await rig.snapshot()
        # 1. The backlog: every channel due at once.
        deadline = time.monotonic() + args.drain_timeout
        drained = False
        shown = time.monotonic()
        while time.monotonic() < deadline:
            rig.check_alive()
            rig.sample_memory()
            state = await progress(db, args.interval)
            if all(p["polled"] >= p["linked"] for p in state.values()):
                drained = True
                break
            if time.monotonic() - shown >= 15:
                shown = time.monotonic()
                polled = ", ".join(f"{k} {v['polled']:.0f}" for k, v in state.items())
                print(f"  backlog, {shown - start.at:.0f} s: polled once: {polled}", flush=True)
            await asyncio.sleep(0.5)
        after_backlog = await rig.snapshot()
        backlog_state = await progress(db, args.interval)

        # 2. Steady state: next polls spread evenly over one interval, as in a fleet that has
        #    been running for a while.
        spread_started = time.monotonic()
        for part in range(SPREAD_SLICES):
            await db.execute(SPREAD, args.interval, SPREAD_MARGIN_SECONDS, part, SPREAD_SLICES)
        spread_seconds = time.monotonic() - spread_started
        steady_from = await rig.snapshot()
        steady_until_at = time.monotonic() + args.duration
        lateness = []
        while (left := steady_until_at - time.monotonic()) > 0:
            await asyncio.sleep(min(5.0, left))
            rig.check_alive()
            rig.sample_memory()
            state = await progress(db, args.interval)
            lateness.append(
                {
                    "t": round(time.monotonic() - steady_from.at, 1),
                    "late": sum(p["late"] for p in state.values()),
                    "behind_s": max(p["behind"] for p in state.values()),
                    "by_platform": state,
                }
            )
        steady_until = await rig.snapshot()
        rig.sample_memory()
    finally:
        await db.close()
    return {
        "start": start,
        "after_backlog": after_backlog,
        "drained": drained,
        "backlog_state": backlog_state,
        "steady_from": steady_from,
        "steady_until": steady_until,
        "lateness": lateness,
        "spread_seconds": spread_seconds,
    }


def phase_figures(a: Snapshot, b: Snapshot, workers: int) -> dict[str, Any]:
    seconds = b.at - a.at
    polls = b.polls() - a.polls()
    figures: dict[str, Any] = {
        "seconds": seconds,
        "polls": polls,
        "observations_per_s": polls / seconds if seconds else 0.0,
        "rows_written_per_s": (
            metric(b.metrics, "lumio_status_rows_written_total")
            - metric(a.metrics, "lumio_status_rows_written_total")
        )
        / seconds
        if seconds
        else 0.0,
        "observations_per_s_per_worker": polls / seconds / workers if seconds else 0.0,
        "worker_cpu_share": (b.worker_cpu - a.worker_cpu) / seconds if seconds else 0.0,
        "fakes_cpu_share": (b.fakes_cpu - a.fakes_cpu) / seconds if seconds else 0.0,
        # Of every CPU of the machine (PostgreSQL, Redis and the benchmark itself included).
        "machine_cpu_busy": (b.machine_busy - a.machine_busy) / (b.machine_total - a.machine_total)
        if b.machine_total > a.machine_total
        else 0.0,
        "platforms": {},
    }
    for platform in Platform:
        p_polls = b.polls(platform) - a.polls(platform)
        fa, fb = a.fakes[platform], b.fakes[platform]
        requests = fb.poll_requests - fa.poll_requests
        entry: dict[str, Any] = {
            "polls": p_polls,
            "requests": requests,
            "requests_per_channel_per_cycle": requests / p_polls if p_polls else None,
            "unknown": metric(
                b.metrics, "lumio_observations_total", platform=platform.value, kind="unknown"
            )
            - metric(
                a.metrics, "lumio_observations_total", platform=platform.value, kind="unknown"
            ),
            "budget_waits": metric(b.metrics, "lumio_budget_waits_total", platform=platform.value)
            - metric(a.metrics, "lumio_budget_waits_total", platform=platform.value),
        }
        if platform is Platform.TWITCH:
            entry["throttled_429"] = fb.throttled - fa.throttled
            entry["ids_per_request"] = (
                (fb.ids_requested - fa.ids_requested) / requests if requests else None
            )
        if platform is Platform.YOUTUBE:
            confirmations = fb.confirmations - fa.confirmations
            entry["feed_requests"] = fb.feed_requests - fa.feed_requests
            entry["confirmations"] = confirmations
            entry["confirmations_per_channel_per_cycle"] = (
                confirmations / p_polls if p_polls else None
            )
        if platform is Platform.KICK:
            entry["ids_per_request"] = p_polls / requests if requests else None
        figures["platforms"][platform.value] = entry
    return figures


# --- CPU per request, one platform at a time --------------------------------------------------

# Parked an hour ahead while the worker starts, then all due at once.
MAKE_DUE = """
UPDATE platform_channels
SET next_poll_at = now() + make_interval(secs => $2), lease_token = NULL, leased_until = NULL
WHERE platform = $1
"""
CREDENTIALS = {
    Platform.TWITCH: ("LUMIO_TWITCH_CLIENT_ID", "LUMIO_TWITCH_CLIENT_SECRET"),
    Platform.YOUTUBE: ("LUMIO_YOUTUBE_API_KEY",),
    Platform.KICK: ("LUMIO_KICK_CLIENT_ID", "LUMIO_KICK_CLIENT_SECRET"),
    Platform.TROVO: ("LUMIO_TROVO_CLIENT_ID",),
}
# The worker's start-up is not counted: it idles this long before the channels come due.
CPU_SETTLE_SECONDS = 2.0


async def make_due(url: str, platform: Platform, in_seconds: float = 0.0) -> None:
    conn = await asyncpg.connect(url, timeout=10, command_timeout=120)
    try:
        await conn.execute(MAKE_DUE, platform.value, in_seconds)
    finally:
        await conn.close()


async def _cpu_window(
    rig: Rig, platform: Platform, window: float, channels: int
) -> dict[str, float | None]:
    """From the moment every channel comes due until all are polled (or ``window`` is over)."""
    await wait_for_metrics(rig)
    await asyncio.sleep(CPU_SETTLE_SECONDS)
    a = await rig.snapshot()
    await make_due(rig.url, platform)
    deadline, b = time.monotonic() + window, a
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        rig.check_alive()
        b = await rig.snapshot()
        if b.polls(platform) - a.polls(platform) >= channels:
            break
    cpu = b.worker_cpu - a.worker_cpu
    requests = b.fakes[platform].poll_requests - a.fakes[platform].poll_requests
    polls = b.polls(platform) - a.polls(platform)
    return {
        "seconds": b.at - a.at,
        "cpu_seconds": cpu,
        "requests": requests,
        "polls": polls,
        "cpu_us_per_request": cpu / requests * 1e6 if requests else None,
        "cpu_us_per_poll": cpu / polls * 1e6 if polls else None,
        "worker_cpu_share": cpu / (b.at - a.at),
    }


async def _measure_alone(
    url: str,
    worker: tuple[Child, int],
    fakes: dict[Platform, tuple[Child, int]],
    platform: Platform,
    args: argparse.Namespace,
) -> dict[str, float | None]:
    async with httpx.AsyncClient(timeout=10) as client:
        rig = Rig(url, [worker], fakes, client)
        return await _cpu_window(rig, platform, args.cpu_window, args.channels_per_platform)


def platform_cpu(
    children: Children,
    url: str,
    redis_url: str,
    ports: dict[Platform, int],
    fakes: dict[Platform, tuple[Child, int]],
    args: argparse.Namespace,
) -> dict[str, dict[str, float | None]]:
    """One worker process polling one platform alone, every channel due at once: its CPU per
    request (the fake's count) and per channel poll, until all are polled or ``--cpu-window``."""
    found = {}
    for platform in Platform:
        asyncio.run(make_due(url, platform, 3600.0))
        metrics_port = free_port()
        env = worker_env(args, url, redis_url, ports, metrics_port)
        for other in Platform:
            if other is not platform:
                for name in CREDENTIALS[other]:
                    env.pop(name, None)
        worker = children.start(f"cpu-{platform.value}", [str(VENV_BIN / "lumio"), "worker"], env)

        found[platform.value] = asyncio.run(
            _measure_alone(url, (worker, metrics_port), fakes, platform, args)
        )
        children.stop(worker)
        figures = found[platform.value]
        print(
            f"  {platform.value} alone: {_fmt(figures['cpu_us_per_request'], 0)} µs CPU per "
            f"request, {_fmt(figures['cpu_us_per_poll'], 0)} µs per channel poll",
            flush=True,
        )
    return found


# --- the run -----------------------------------------------------------------------------------


def fake_credentials() -> dict[str, str]:
    kick_state, trovo_state = kick.FakeKickState(), trovo.FakeTrovoState()
    return {
        "LUMIO_TWITCH_CLIENT_ID": twitch.DEFAULT_CLIENT_ID,
        "LUMIO_TWITCH_CLIENT_SECRET": twitch.DEFAULT_CLIENT_SECRET,
        "LUMIO_YOUTUBE_API_KEY": youtube.DEFAULT_API_KEY,
        "LUMIO_KICK_CLIENT_ID": kick_state.client_id,
        "LUMIO_KICK_CLIENT_SECRET": kick_state.client_secret,
        "LUMIO_TROVO_CLIENT_ID": trovo_state.client_id,
    }


def worker_env(
    args: argparse.Namespace, url: str, redis_url: str, ports: dict[Platform, int], metrics: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUMIO_")}
    base = {p: f"http://127.0.0.1:{port}" for p, port in ports.items()}
    env.update(fake_credentials())
    env.update(
        DATABASE_URL=url,
        REDIS_URL=redis_url,
        LUMIO_TWITCH_API_BASE=base[Platform.TWITCH],
        LUMIO_TWITCH_ID_BASE=base[Platform.TWITCH],
        LUMIO_YOUTUBE_API_BASE=base[Platform.YOUTUBE],
        LUMIO_YOUTUBE_FEED_BASE=base[Platform.YOUTUBE],
        LUMIO_YOUTUBE_DAILY_QUOTA=str(YOUTUBE_QUOTA),
        LUMIO_KICK_API_BASE=base[Platform.KICK],
        LUMIO_KICK_ID_BASE=base[Platform.KICK],
        LUMIO_TROVO_API_BASE=base[Platform.TROVO],
        LUMIO_WORKER_METRICS_PORT=str(metrics),
        LUMIO_POLL_OFFLINE_SECONDS=str(args.interval),
        LUMIO_POLL_LIVE_SECONDS=str(args.interval / 2),
        LUMIO_POLL_SETTLING_SECONDS=str(args.interval / 4),
    )
    if args.concurrency:
        env["LUMIO_WORKER_CONCURRENCY"] = str(args.concurrency)
    return env


async def wait_fakes_ready(fakes: dict[Platform, tuple[Child, int]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as client:
        for child, port in fakes.values():
            while True:
                child.check_alive()
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{port}/_control/stats")).is_success:
                        break
                if time.monotonic() > deadline:
                    raise BenchError(f"{child.name} did not start:\n{child.log_tail()}")
                await asyncio.sleep(0.2)


async def measure_workers(
    url: str,
    workers: list[tuple[Child, int]],
    fakes: dict[Platform, tuple[Child, int]],
    args: argparse.Namespace,
) -> tuple[dict[str, Any], dict[str, float]]:
    async with httpx.AsyncClient(timeout=10) as client:
        rig = Rig(url, workers, fakes, client)
        phases = await run_phases(rig, args)
        return phases, rig.peak_rss_mb


def start_fake(
    children: Children, platform: Platform, port: int, args: argparse.Namespace
) -> Child:
    command = [sys.executable, "-m", "bench.fakes_server", "--platform", platform.value]
    command += ["--port", str(port), "--channels", str(args.channels_per_platform)]
    command += ["--live-every", str(args.live_every)]
    return children.start(f"fake-{platform.value}", command, dict(os.environ))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = Path(tempfile.mkdtemp(prefix=f"worker_bench-{stamp}-"))
    env_db, env_redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    # Without the URLs: embedded servers in the run's temp folder, stopped on exit.
    embedded = log_dir / "embedded"
    with embedded_services(embedded, env_db, env_redis) as (admin_url, redis_root):
        redis_url = redis_url_with_db(redis_root, args.redis_db)
        # Exits run in reverse: the processes stop before the database is dropped.
        with (
            bench_database(admin_url) as url,
            clean_budgets(redis_url),
            Children(log_dir) as children,
        ):
            print(f"database {urlsplit(url).path[1:]}, Redis {redis_url}, logs in {log_dir}")
            ports = {p: free_port() for p in Platform}
            fakes = {p: (start_fake(children, p, ports[p], args), ports[p]) for p in Platform}
            seed_seconds = asyncio.run(seed(url, args.channels_per_platform))
            print(
                f"seeded {4 * args.channels_per_platform:,} linked channels in {seed_seconds:.1f} s"
            )
            # The fakes seed themselves meanwhile; the writers are timed once they are idle.
            asyncio.run(wait_fakes_ready(fakes))
            writers = asyncio.run(time_writers(url, args.writer_rows, args.single_rows))
            for kind, w in writers["kinds"].items():
                print(
                    f"{kind}: batch {w['batch_rows_per_s']:,.0f} rows/s, "
                    f"single-row {w['single_rows_per_s']:,.0f} rows/s"
                )
            command = shlex.split(args.worker_command) if args.worker_command else None
            workers = []
            for n in range(args.workers):
                metrics_port = free_port()
                env = worker_env(args, url, redis_url, ports, metrics_port)
                worker = children.start(
                    f"worker-{n + 1}", command or [str(VENV_BIN / "lumio"), "worker"], env
                )
                workers.append((worker, metrics_port))
            pids = ", ".join(str(w.process.pid) for w, _ in workers)
            print(f"worker pid {pids}: backlog, then {args.duration:.0f} s steady", flush=True)
            phases, peak_rss = asyncio.run(measure_workers(url, workers, fakes, args))
            exit_codes = [children.stop(worker) for worker, _ in workers]
            cpu: dict[str, Any] = {}
            if args.cpu_window > 0:
                print(f"CPU per request: each platform alone, at most {args.cpu_window:.0f} s each")
                cpu = platform_cpu(children, url, redis_url, ports, fakes, args)
    return {
        "phases": phases,
        "cpu_per_platform": cpu,
        "peak_rss_mb": peak_rss,
        "worker_exit_codes": exit_codes,
        "writers": writers,
        "seed_seconds": seed_seconds,
        "log_dir": str(log_dir),
        "stamp": stamp,
    }


def checks(result: dict[str, Any]) -> list[dict[str, Any]]:
    steady = result["steady"]["platforms"]
    found = []
    for platform, target in REQUEST_TARGETS.items():
        entry = steady[platform.value]
        key = (
            "confirmations_per_channel_per_cycle"
            if platform is Platform.YOUTUBE
            else "requests_per_channel_per_cycle"
        )
        value = entry[key]
        name = "videos.list" if platform is Platform.YOUTUBE else "requests"
        found.append(
            {
                "name": f"{platform.value} {name} per channel per cycle",
                "value": value,
                "target": f"<= {target}",
                "pass": value is not None and value <= target,
            }
        )
    for kind, figures in result["writers"]["kinds"].items():
        found.append(
            {
                "name": f"batch vs single-row rows/s, {kind}",
                "value": figures["ratio"],
                "target": f">= {WRITER_RATIO_TARGET}",
                "pass": figures["ratio"] >= WRITER_RATIO_TARGET,
            }
        )
    for platform, figures in result["steady_schedule"].items():
        found.append(
            {
                "name": f"{platform} worst lateness in the steady state (fraction of interval)",
                "value": figures["worst_fraction"],
                "target": f"<= {LATENESS_TARGET}",
                "pass": figures["worst_fraction"] <= LATENESS_TARGET,
            }
        )
    peak = max(result["peak_rss_mb"].values(), default=0.0)
    found.append(
        {
            "name": "worker peak memory (MB, largest process)",
            "value": peak,
            "target": f"< {MEMORY_TARGET_MB}",
            "pass": 0 < peak < MEMORY_TARGET_MB,
        }
    )
    return found


def summarise(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    phases = raw["phases"]
    result: dict[str, Any] = {
        "benchmark": "worker_bench",
        "started": raw["stamp"],
        "machine": {
            "python": platform_module.python_version(),
            "system": platform_module.platform(),
            "cpus": os.cpu_count(),
        },
        "parameters": {
            k: (v.value if isinstance(v, Platform) else v) for k, v in vars(args).items()
        },
        "seed_seconds": raw["seed_seconds"],
        "backlog": phase_figures(phases["start"], phases["after_backlog"], args.workers),
        "backlog_drained": phases["drained"],
        "backlog_end_state": phases["backlog_state"],
        "steady": phase_figures(phases["steady_from"], phases["steady_until"], args.workers),
        "steady_lateness": phases["lateness"],
        "spread_seconds": phases["spread_seconds"],
        "steady_schedule": schedule_figures(phases["lateness"]),
        "cpu_per_platform": raw["cpu_per_platform"],
        "writers": raw["writers"],
        "peak_rss_mb": raw["peak_rss_mb"],
        "worker_exit_codes": raw["worker_exit_codes"],
        "logs": raw["log_dir"],
    }
    result["checks"] = checks(result)
    return result


def schedule_figures(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per platform over the steady state's samples: past due at the end, and how late at worst
    as a fraction of each channel's interval (with the most channels over the target at once)."""
    if not samples:
        return {}
    end = samples[-1]["by_platform"]
    found = {}
    for name in end:
        seen = [s["by_platform"][name] for s in samples if name in s["by_platform"]]
        found[name] = {
            "past_due_end": end[name]["past_due"],
            "over_target_end": end[name]["over_target"],
            "over_target_max": max(p["over_target"] for p in seen),
            "worst_fraction": max(p["worst_fraction"] for p in seen),
        }
    return found


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_schedule(result: dict[str, Any]) -> None:
    schedule, cpu = result["steady_schedule"], result["cpu_per_platform"]
    print(f"\n{'platform':<9}{'past due at end':>16}{'>10 % late at end':>19}"
          f"{'>10 % at worst':>16}{'worst lateness':>16}{'CPU µs/request':>16}"
          f"{'CPU µs/poll':>13}")  # fmt: skip
    for name, figures in schedule.items():
        alone = cpu.get(name, {})
        print(
            f"{name:<9}{figures['past_due_end']:>16.0f}{figures['over_target_end']:>19.0f}"
            f"{figures['over_target_max']:>16.0f}{figures['worst_fraction']:>15.0%} "
            f"{_fmt(alone.get('cpu_us_per_request'), 0):>16}{_fmt(alone.get('cpu_us_per_poll'), 0):>13}"
        )
    print(
        f"(steady state from the spread, which took {result['spread_seconds']:.1f} s; its "
        f"schedule starts {SPREAD_MARGIN_SECONDS:.0f} s after the statement began)"
    )
    print("(lateness: how long past due, as a fraction of the channel's own interval; CPU: the")
    print(" platform polled alone by one worker with every channel due, after the main run)")


def print_report(result: dict[str, Any]) -> None:
    backlog, steady = result["backlog"], result["steady"]
    print()
    print(f"{'phase':<10}{'seconds':>9}{'polls':>10}{'obs/s':>9}{'obs/s/worker':>14}"
          f"{'rows/s':>9}{'worker CPU':>12}{'fakes CPU':>11}{'machine busy':>14}")  # fmt: skip
    for name, phase in (("backlog", backlog), ("steady", steady)):
        print(
            f"{name:<10}{phase['seconds']:>9.1f}{phase['polls']:>10.0f}"
            f"{phase['observations_per_s']:>9.0f}{phase['observations_per_s_per_worker']:>14.0f}"
            f"{phase['rows_written_per_s']:>9.0f}{phase['worker_cpu_share']:>12.0%}"
            f"{phase['fakes_cpu_share']:>11.0%}{phase['machine_cpu_busy']:>14.0%}"
        )
    print(f"(CPU shares: 100 % = one core; machine busy: of all {os.cpu_count()} cores)")
    if not result["backlog_drained"]:
        print("(the backlog was not drained within --drain-timeout)")
    print()
    print(f"{'platform':<9}{'phase':<9}{'polls':>9}{'requests':>10}{'req/ch/cycle':>14}"
          f"{'videos.list/ch':>16}{'unknown':>9}{'429s':>6}")  # fmt: skip
    for platform in Platform:
        for name, phase in (("backlog", backlog), ("steady", steady)):
            e = phase["platforms"][platform.value]
            print(
                f"{platform.value:<9}{name:<9}{e['polls']:>9.0f}{e['requests']:>10}"
                f"{_fmt(e['requests_per_channel_per_cycle']):>14}"
                f"{_fmt(e.get('confirmations_per_channel_per_cycle')):>16}"
                f"{e['unknown']:>9.0f}{e.get('throttled_429', 0):>6}"
            )
    worst = max(result["steady_lateness"], key=lambda s: s["late"], default=None)
    if worst is not None:
        print(
            f"\nsteady state: at worst {worst['late']:.0f} channels more than {LATE_SECONDS:.0f} s "
            f"past due, the oldest {worst['behind_s']:.1f} s (t = {worst['t']} s): "
            + ", ".join(
                f"{name} {p['late']:.0f} late / {max(p['behind'], 0.0):.0f} s"
                for name, p in worst["by_platform"].items()
            )
        )
    print_schedule(result)
    w = result["writers"]
    print(f"\nwriters, batch of {w['rows']:,} rows vs a loop over {w['single_rows']:,} rows:")
    for kind, figures in w["kinds"].items():
        print(
            f"  {kind:<28} batch {figures['batch_rows_per_s']:>9,.0f} rows/s"
            f" ({figures['batch_seconds']:.2f} s), single-row {figures['single_rows_per_s']:>7,.0f}"
            f" rows/s: {figures['ratio']:.1f}x"
        )
    peaks = ", ".join(f"{k} {v:.0f} MB" for k, v in result["peak_rss_mb"].items())
    print(f"peak RSS (VmHWM): {peaks}; exit codes {result['worker_exit_codes']}")
    print()
    for check in result["checks"]:
        verdict = "PASS" if check["pass"] else "FAIL"
        print(f"{verdict}  {check['name']}: {_fmt(check['value'], 4)} (target {check['target']})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--channels-per-platform", type=int, default=25_000)
    parser.add_argument("--duration", type=float, default=60.0, help="steady-state seconds")
    parser.add_argument(
        "--interval", type=float, default=60.0, help="offline poll interval (live: half)"
    )
    parser.add_argument("--drain-timeout", type=float, default=240.0)
    parser.add_argument("--live-every", type=int, default=100, help="every n-th channel is live")
    parser.add_argument("--writer-rows", type=int, default=10_000, help="rows per batch write")
    parser.add_argument(
        "--single-rows", type=int, default=2_000, help="rows written one by one, per writer"
    )
    parser.add_argument("--concurrency", type=int, default=0, help="LUMIO_WORKER_CONCURRENCY")
    parser.add_argument(
        "--workers", "--replicas", type=int, default=1, help="worker processes (replicas)"
    )
    parser.add_argument(
        "--cpu-window",
        type=float,
        default=15.0,
        help="at most this long per platform polled alone, for CPU per request (0: skip)",
    )
    parser.add_argument(
        "--worker-command",
        default="",
        help="run this instead of `lumio worker`, e.g. to compare a patched worker",
    )
    parser.add_argument("--redis-db", type=int, default=14, help="Redis database for budgets")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    if (
        min(args.channels_per_platform, args.writer_rows, args.single_rows, args.workers) < 1
        or args.duration <= 0
    ):
        parser.error("counts and durations must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raw = run_guarded(lambda: measure(args), "processes stopped, database dropped")
    if isinstance(raw, int):
        return raw
    result = summarise(raw, args)
    print_report(result)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"worker_bench-{result['started']}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nresults: {path.relative_to(ROOT)}")
    return exit_status(result["checks"], args.fail_on_miss)


if __name__ == "__main__":
    sys.exit(main())
