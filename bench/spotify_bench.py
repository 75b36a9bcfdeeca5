"""Benchmark of `lumio spotify-worker`: 5,000 gated-open accounts on the fake Spotify (issue 4).

    .venv/bin/python -m bench.spotify_bench [--accounts 5000] [--duration 60] [--warmup 20]

Seeds a database of its own with ``--accounts`` accounts, each linked to a fake Spotify user (its
tokens encrypted as the API stores them) and each with an open gate: half live on Twitch in
``channel_status``, half with manual connect on in Redis. The fake Spotify runs as a process of its
own (``python -m bench.spotify_bench fake``, so that it does not share the worker's CPU), every
user playing a queue of 2.5-5 minute tracks from a random position. One real
``lumio spotify-worker`` process is started on the production intervals (5 s while playing) and,
after ``--warmup`` seconds, measured for ``--duration`` seconds:

- requests/s achieved (the fake's own log) against requests/s due (accounts / playing interval);
- the gaps between two polls of the same account (p50, p95, p99, max; the share over 1.5 x the
  interval): sustaining the interval means the gaps stay at it;
- the time until every account had been polled once after the start (the backlog sweep);
- the worker's CPU time per second of wall time for every 1,000 accounts (from /proc), and its
  peak resident memory (VmHWM).

Prints a table and writes JSON into ``bench/results/``. Everything it starts (the fake, the
worker, the database, its Redis keys) is stopped, dropped or deleted on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from redis import Redis

from bench.common import (
    RESULTS_DIR,
    ROOT,
    VENV_BIN,
    BenchError,
    Child,
    cpu_seconds,
    create_database,
    drop_database,
    interrupt,
    memory_mb,
    spawn_logged,
)
from lumio.db.migrate import upgrade
from lumio.dev.fakes.server import free_port
from lumio.dev.fakes.spotify import (
    CURRENTLY_PLAYING,
    FakeSpotifyState,
    FakeTrack,
    create_app,
)
from lumio.embedded import embedded_services
from lumio.manual_connect.service import manual_key
from lumio.spotify.linking.crypto import (
    TokenCipher,
    decode_key,
    new_key,
)
from lumio.spotify.now_playing import now_playing_key
from lumio.spotify.poller.budget import BUDGET_KEY

CLIENT_ID = "bench-spotify"
CLIENT_SECRET = "bench-spotify-secret"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
# The share of gaps allowed over 1.5 x the interval for "sustained".
LATE_SHARE_TARGET = 0.01


def user_id(n: int) -> str:
    return f"bench{n:06d}"


def access_token(n: int) -> str:
    return f"bench-access-{n:06d}"


def refresh_token(n: int) -> str:
    return f"bench-refresh-{n:06d}"


# --- the fake, as a process of its own ----------------------------------------------------------


def fake_state(accounts: int, seed: int) -> FakeSpotifyState:
    state = FakeSpotifyState(CLIENT_ID, CLIENT_SECRET)
    state.access_seconds = 86_400
    rng = random.Random(seed)
    for n in range(accounts):
        tracks = [
            FakeTrack(
                f"bt{n:06d}{k}",
                f"Track {k}",
                ("Bench Artist",),
                "Bench",
                rng.randint(150_000, 300_000),
            )
            for k in range(3)
        ]
        state.add_user(user_id(n), tracks=tracks)
        state.act(user_id(n), "play", position_ms=rng.randint(0, 140_000))
        state.grant_tokens(user_id(n), access_token(n), refresh_token(n))
    return state


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def window_report(
    state: FakeSpotifyState, since: float, until: float, interval: float
) -> dict[str, Any]:
    """What the fake saw between ``since`` and ``until``: requests, accounts, gaps."""
    times: dict[str | None, list[float]] = defaultdict(list)
    first: dict[str | None, float] = {}
    statuses: dict[int, int] = defaultdict(int)
    for request in state.log(CURRENTLY_PLAYING):
        first.setdefault(request.user_id, request.at)
        if since <= request.at < until:
            times[request.user_id].append(request.at)
            statuses[request.status] += 1
    gaps = [b - a for seen in times.values() for a, b in itertools.pairwise(seen)]
    return {
        "requests": sum(len(t) for t in times.values()),
        "accounts_polled": len(times),
        "statuses": dict(statuses),
        "first_poll": sorted(first.values()),
        "gap_p50": statistics.median(gaps) if gaps else 0.0,
        "gap_p95": percentile(gaps, 0.95),
        "gap_p99": percentile(gaps, 0.99),
        "gap_max": max(gaps, default=0.0),
        "late_share": sum(g > 1.5 * interval for g in gaps) / len(gaps) if gaps else 0.0,
    }


def serve_fake(port: int, accounts: int, seed: int, interval: float) -> None:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    state = fake_state(accounts, seed)
    app = create_app(state)

    async def window(request: Request) -> JSONResponse:
        since, until = float(request.query_params["since"]), float(request.query_params["until"])
        return JSONResponse(window_report(state, since, until, interval))

    app.add_route("/_bench/window", window, methods=["GET"])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


# --- processes ----------------------------------------------------------------------------------


@contextlib.contextmanager
def child(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Iterator[Child]:
    log_path = log_dir / f"{name}.log"
    process = spawn_logged(command, env, log_path, stdin=subprocess.DEVNULL)
    started = Child(name, process, log_path, tail_lines=20)
    try:
        yield started
    finally:
        started.stop(STOP_TIMEOUT)


def load_average() -> list[float]:
    with contextlib.suppress(OSError):
        return [round(x, 2) for x in os.getloadavg()]
    return []


# --- the database and Redis ---------------------------------------------------------------------


def with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


SEED_ACCOUNTS = """
INSERT INTO accounts (name) SELECT 'Bench ' || n FROM generate_series(1, $1) AS n RETURNING id
"""
SEED_CONNECTIONS = """
INSERT INTO spotify_connections
    (account_id, spotify_user_id, display_name, scope, access_token, refresh_token,
     access_expires_at)
SELECT account_id, spotify_user_id, spotify_user_id, 'user-read-currently-playing',
       access_token, refresh_token, now() + interval '1 day'
FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[])
    AS t(account_id, spotify_user_id, access_token, refresh_token)
"""
SEED_LIVE = """
INSERT INTO channel_status (account_id, platform, is_online, stream_title, started_at, updated_at)
SELECT account_id, 'twitch', TRUE, 'Bench stream', now(), now() FROM unnest($1::uuid[]) AS account_id
"""


async def seed(database_url: str, accounts: int, key: str) -> list[uuid.UUID]:
    """The accounts, their links (tokens encrypted as the API stores them) and the live half."""
    cipher = TokenCipher(decode_key(key))
    conn = await asyncpg.connect(database_url, timeout=10, command_timeout=300)
    try:
        ids: list[uuid.UUID] = [r["id"] for r in await conn.fetch(SEED_ACCOUNTS, accounts)]
        pairs = [
            cipher.encrypt_pair(a, access_token(n), refresh_token(n)) for n, a in enumerate(ids)
        ]
        await conn.execute(
            SEED_CONNECTIONS,
            ids,
            [user_id(n) for n in range(accounts)],
            [p[0] for p in pairs],
            [p[1] for p in pairs],
        )
        await conn.execute(SEED_LIVE, ids[::2])
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return ids


def redis_keys(ids: list[uuid.UUID]) -> list[str]:
    return [BUDGET_KEY, *(manual_key(a) for a in ids), *(now_playing_key(a) for a in ids)]


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Figures:
    accounts: int
    interval: float
    duration: float
    requests_per_s: float
    due_per_s: float
    ratio: float
    sweep_seconds: float
    gap_p50: float
    gap_p95: float
    gap_p99: float
    gap_max: float
    late_share: float
    accounts_polled: int
    cpu_per_s: float
    cpu_per_1000_accounts: float
    fake_cpu_per_s: float
    peak_mb: float
    statuses: dict[str, int]


def wait_ready(url: str, child_process: Child) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        child_process.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/_control/stats", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"{child_process.name} did not answer within {READY_TIMEOUT:.0f} s")


def measure(
    args: argparse.Namespace, fake_url: str, fake: Child, worker: Child, started: float
) -> Figures:
    deadline = time.time() + args.warmup
    while time.time() < deadline:
        worker.check_alive()
        fake.check_alive()
        time.sleep(0.5)
    since, cpu_a, fake_a = (
        time.time(),
        cpu_seconds(worker.process.pid),
        cpu_seconds(fake.process.pid),
    )
    time.sleep(args.duration)
    until, cpu_b, fake_b = (
        time.time(),
        cpu_seconds(worker.process.pid),
        cpu_seconds(fake.process.pid),
    )
    worker.check_alive()
    report = httpx.get(
        f"{fake_url}/_bench/window", params={"since": since, "until": until}, timeout=60
    ).json()
    firsts = report["first_poll"]
    sweep = (max(firsts) - started) if len(firsts) == args.accounts else float("nan")
    achieved = report["requests"] / (until - since)
    due = args.accounts / args.interval
    cpu = (cpu_b - cpu_a) / (until - since)
    return Figures(
        accounts=args.accounts,
        interval=args.interval,
        duration=round(until - since, 2),
        requests_per_s=round(achieved, 1),
        due_per_s=round(due, 1),
        ratio=round(achieved / due, 3),
        sweep_seconds=round(sweep, 2),
        gap_p50=round(report["gap_p50"], 3),
        gap_p95=round(report["gap_p95"], 3),
        gap_p99=round(report["gap_p99"], 3),
        gap_max=round(report["gap_max"], 3),
        late_share=round(report["late_share"], 4),
        accounts_polled=report["accounts_polled"],
        cpu_per_s=round(cpu, 3),
        cpu_per_1000_accounts=round(cpu / (args.accounts / 1000), 4),
        fake_cpu_per_s=round((fake_b - fake_a) / (until - since), 3),
        peak_mb=round(memory_mb(worker.process.pid).get("VmHWM", 0.0), 1),
        statuses={str(k): v for k, v in report["statuses"].items()},
    )


def worker_env(
    args: argparse.Namespace, database_url: str, redis_url: str, fake_url: str, key: str
) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LUMIO_SPOTIFY_CLIENT_ID": CLIENT_ID,
        "LUMIO_SPOTIFY_CLIENT_SECRET": CLIENT_SECRET,
        "LUMIO_SPOTIFY_ACCOUNTS_BASE": fake_url,
        "LUMIO_SPOTIFY_API_BASE": fake_url,
        "LUMIO_SPOTIFY_TOKEN_KEY": key,
        "LUMIO_SPOTIFY_POLL_PLAYING_SECONDS": str(args.interval),
        "LUMIO_SPOTIFY_WORKER_CONCURRENCY": str(args.concurrency),
        "LUMIO_SPOTIFY_BATCH_SIZE": str(args.batch),
    }


def print_figures(f: Figures, load_before: list[float], load_after: list[float]) -> None:
    sustained = f.ratio >= 0.97 and f.late_share <= LATE_SHARE_TARGET
    rows = [
        ("accounts (gate open)", f"{f.accounts:,}"),
        ("playing interval", f"{f.interval:g} s"),
        ("requests/s achieved", f"{f.requests_per_s:,.1f}"),
        ("requests/s due", f"{f.due_per_s:,.1f}"),
        ("achieved / due", f"{f.ratio:.3f}"),
        (
            "gap between polls p50 / p95 / p99 / max",
            f"{f.gap_p50} / {f.gap_p95} / {f.gap_p99} / {f.gap_max} s",
        ),
        ("gaps over 1.5 x interval", f"{100 * f.late_share:.2f} %"),
        ("first sweep of every account", f"{f.sweep_seconds} s"),
        ("worker CPU", f"{f.cpu_per_s:.3f} core"),
        ("worker CPU per 1,000 accounts", f"{f.cpu_per_1000_accounts:.4f} core"),
        ("fake's CPU (not the worker's)", f"{f.fake_cpu_per_s:.3f} core"),
        ("worker peak memory (VmHWM)", f"{f.peak_mb:.1f} MB"),
        ("answers", ", ".join(f"{k}: {v}" for k, v in sorted(f.statuses.items()))),
        ("load average before / after", f"{load_before} / {load_after}"),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(
        f"\n  sustained (≥ 0.97 of due, ≤ {100 * LATE_SHARE_TARGET:g} % late gaps): "
        f"{'PASS' if sustained else 'FAIL'}\n"
    )


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="lumio-spotify-bench-") as tmp:
        work = Path(tmp)
        with embedded_services(
            work / "servers", os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
        ) as (admin_url, base_redis):
            redis_url = (
                with_path(base_redis, f"/{args.redis_db}")
                if base_redis.startswith("redis")
                else base_redis
            )
            name = f"lumio_spotifybench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            asyncio.run(create_database(admin_url, name))
            database_url = with_path(admin_url, f"/{name}")
            redis = Redis.from_url(redis_url)
            ids: list[uuid.UUID] = []
            try:
                upgrade(database_url)
                key = new_key()
                print(f"seeding {args.accounts:,} linked accounts ...", flush=True)
                ids = asyncio.run(seed(database_url, args.accounts, key))
                with redis.pipeline(transaction=False) as pipe:
                    for account_id in ids[1::2]:
                        pipe.set(manual_key(account_id), "bench", ex=3600)
                    pipe.delete(BUDGET_KEY)
                    pipe.execute()
                fake_port = free_port()
                fake_url = f"http://127.0.0.1:{fake_port}"
                fake_command = [
                    sys.executable,
                    "-m",
                    "bench.spotify_bench",
                    "fake",
                    "--port",
                    str(fake_port),
                    "--accounts",
                    str(args.accounts),
                    "--interval",
                    str(args.interval),
                ]
                with child("fake-spotify", fake_command, dict(os.environ), work) as fake:
                    wait_ready(fake_url, fake)
                    env = worker_env(args, database_url, redis_url, fake_url, key)
                    load_before = load_average()
                    started = time.time()
                    print(
                        f"worker running; warm-up {args.warmup:g} s, then {args.duration:g} s measured ...",
                        flush=True,
                    )
                    with child(
                        "spotify-worker", [str(VENV_BIN / "lumio"), "spotify-worker"], env, work
                    ) as worker:
                        figures = measure(args, fake_url, fake, worker, started)
                        if args.show_logs:
                            print(worker.log_tail(40))
                    load_after = load_average()
                print_figures(figures, load_before, load_after)
                RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
                out = RESULTS_DIR / f"spotify_bench-{stamp}.json"
                out.write_text(
                    json.dumps(
                        {
                            "figures": asdict(figures),
                            "args": vars(args),
                            "load": [load_before, load_after],
                        },
                        indent=2,
                    )
                )
                print(f"  results: {out.relative_to(ROOT)}")
            finally:
                with contextlib.suppress(Exception):
                    keys = redis_keys(ids)
                    for start in range(0, len(keys), 1000):
                        redis.delete(*keys[start : start + 1000])
                redis.close()
                asyncio.run(drop_database(admin_url, name))
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    fake = sub.add_parser("fake", help="serve the seeded fake (started by the benchmark itself)")
    fake.add_argument("--port", type=int, required=True)
    fake.add_argument("--accounts", type=int, default=5000)
    fake.add_argument("--seed", type=int, default=4)
    fake.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=5.0, help="playing interval (s)")
    parser.add_argument("--concurrency", type=int, default=4, help="poll loops in the worker")
    parser.add_argument("--batch", type=int, default=50, help="accounts claimed at a time")
    parser.add_argument("--redis-db", type=int, default=13, help="Redis database for the run")
    parser.add_argument("--show-logs", action="store_true", help="print the worker's log tail")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command == "fake":
        serve_fake(args.port, args.accounts, args.seed, args.interval)
        return 0
    signal.signal(signal.SIGTERM, interrupt)
    try:
        return run(args)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
