"""Benchmark of push ingestion (issue 11) over 10,000 linked Twitch channels on the fake Twitch.

    .venv/bin/python -m bench.push_bench [--channels 10000] [--go-lives 1000] [--window 120]

Seeds a database of its own with ``--channels`` accounts, each linking one Twitch channel, and
the fake Twitch (in this process) with the same channels. The EventSub subscriptions (three per
channel) are seeded as enabled in the fake and the table, as a long-running installation has
them: creating 30,000 through the verification handshake is the reconciler's job, tested in
``tests/push``. One real ``lumio api`` process receives the fake's signed messages; the worker
(pollers, wake-up follower) runs in this process with production intervals. Then:

1. poll-only: push off in the worker, the schedule spread over the 60 s offline interval, for
   ``--window`` seconds: Helix ``/helix/streams`` requests per channel per hour;
2. push healthy, same: the schedule spread over LUMIO_POLL_OFFLINE_WITH_PUSH_SECONDS (300 s);
3. go-lives: ``--go-lives`` channels go live at random moments over ``--window`` seconds; for
   each, from the fake sending ``stream.online`` to ``went_online`` arriving on Redis (p50, p95);
4. the receiver alone: ``--messages`` signed notifications posted to ``/webhooks/twitch`` by 32
   concurrent clients; verified messages per second, and the API process's CPU per message.

Prints PASS/FAIL per target and writes JSON into ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from redis.asyncio import Redis

from bench.common import RESULTS_DIR, cpu_seconds
from bench.worker_bench import bench_database
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.wakeups import follow_wakes
from lumio.detection.worker import PlatformPoller, PollerConfig, Worker
from lumio.dev.fakes.push import rfc3339_nanos
from lumio.dev.fakes.server import FakeServer, free_port
from lumio.dev.fakes.twitch import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    FakeTwitchState,
    SubscriptionIn,
    eventsub_signature,
)
from lumio.dev.fakes.twitch import create_app as twitch_app
from lumio.embedded import embedded_services
from lumio.kit.resources import create_redis
from lumio.kit.settings import (
    DatabaseSettings,
    PushSettings,
    RedisSettings,
    Settings,
    TwitchSettings,
)
from lumio.platforms.base import Platform
from lumio.platforms.registry import build_adapter

LUMIO = [sys.executable, "-c", "from lumio.cli import main; main()"]
SECRET = "bench-eventsub-secret-0123"
FIRST_ID = 500_000_000
TOPICS = ("stream.online", "stream.offline", "channel.update")
P95_TARGET = 3.0
REQUEST_RATIO_TARGET = 0.25

SEED = """
WITH seed AS (
    SELECT g AS n, gen_random_uuid() AS account_id FROM generate_series(0, $1 - 1) AS g
), added AS (
    INSERT INTO accounts (id, name) SELECT account_id, 'Push bench ' || n FROM seed
)
INSERT INTO platform_channels (account_id, platform, channel_id, display_name, next_poll_at)
SELECT account_id, 'twitch', ($2 + n)::text, 'bench' || n, now() + interval '1 hour' FROM seed
"""
SEED_SUBSCRIPTIONS = """
INSERT INTO push_subscriptions (platform, channel_id, topic, status, external_id)
SELECT 'twitch', c, t, 'enabled', e FROM unnest($1::text[], $2::text[], $3::text[]) AS s(c, t, e)
"""
SPREAD = """
UPDATE platform_channels SET next_poll_at = now() + make_interval(secs => random() * $1),
    leased_until = NULL, lease_token = NULL
"""
ACCOUNTS = "SELECT account_id, channel_id FROM platform_channels"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Bench:
    def __init__(self, args: argparse.Namespace, db_url: str, redis_url: str) -> None:
        self.args = args
        self.db_url = db_url
        self.redis_url = redis_url
        self.fake = FakeTwitchState(rate_limit=100_000)
        self.api_port = free_port()
        self.fake_url = ""
        self.public_url = f"http://127.0.0.1:{self.api_port}"
        self.online_at: dict[str, float] = {}

    def settings(self) -> Settings:
        return Settings(
            db=DatabaseSettings(url=self.db_url),
            redis=RedisSettings(url=self.redis_url),
            push=PushSettings(public_url=self.public_url, twitch_eventsub_secret=SECRET),
            twitch=TwitchSettings(
                client_id=DEFAULT_CLIENT_ID,
                client_secret=DEFAULT_CLIENT_SECRET,
                api_base=self.fake_url,
                id_base=self.fake_url,
            ),
        )

    def api_env(self) -> dict[str, str]:
        return os.environ | {
            "DATABASE_URL": self.db_url,
            "REDIS_URL": self.redis_url,
            "LUMIO_PUBLIC_URL": self.public_url,
            "LUMIO_TWITCH_CLIENT_ID": DEFAULT_CLIENT_ID,
            "LUMIO_TWITCH_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "LUMIO_TWITCH_API_BASE": self.fake_url,
            "LUMIO_TWITCH_ID_BASE": self.fake_url,
            "LUMIO_TWITCH_EVENTSUB_SECRET": SECRET,
            "LUMIO_DB_POOL_MAX": "10",
        }

    async def seed(self, db: asyncpg.Pool) -> None:
        n = self.args.channels
        await db.execute(SEED, n, FIRST_ID)
        ids = [str(FIRST_ID + i) for i in range(n)]
        for channel_id in ids:
            self.fake.add_channel(f"bench{channel_id}", channel_id=channel_id)
        callback = f"{self.public_url}/webhooks/twitch"
        wanted = [
            SubscriptionIn(
                type=topic,
                version="2" if topic == "channel.update" else "1",
                condition={"broadcaster_user_id": c},
                transport={"method": "webhook", "callback": callback, "secret": SECRET},
            )
            for c in ids
            for topic in TOPICS
        ]
        made = self.fake.adopt_subscriptions(wanted)
        channels = [m["condition"]["broadcaster_user_id"] for m in made]
        await db.execute(
            SEED_SUBSCRIPTIONS, channels, [m["type"] for m in made], [m["id"] for m in made]
        )
        await db.execute("VACUUM ANALYZE")

    async def run_worker(
        self, db: asyncpg.Pool, redis: Redis, push: bool, seconds: float
    ) -> dict[str, Any]:
        """Run the worker for ``seconds`` with the schedule spread over its offline interval."""
        settings = self.settings()
        config = PollerConfig.from_settings(settings, Platform.TWITCH)
        if not push:
            config = PollerConfig(
                config.detector,
                config.intervals,
                config.lease,
                config.backoff_max,
                config.batch_wait,
            )
            self.fake.push.switch("drop", count=10**9)
        interval = (
            settings.push.poll_offline_with_push_seconds
            if push
            else settings.detection.poll_offline.total_seconds()
        )
        await db.execute(SPREAD, interval)
        before = self.fake.stats().by_endpoint.get("streams", 0)
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as http:
            adapter = build_adapter(Platform.TWITCH, settings, http)
            worker = Worker([PlatformPoller(adapter, db, redis, config, WorkerMetrics())], 2)
            tasks = [
                asyncio.create_task(worker.run()),
                asyncio.create_task(follow_wakes(redis, worker)),
            ]
            try:
                result = await self.during(seconds)
            finally:
                worker.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
        self.fake.push.clear()
        requests = self.fake.stats().by_endpoint.get("streams", 0) - before
        per_hour = requests / self.args.channels / (seconds / 3600)
        return {"requests": requests, "seconds": seconds, "per_channel_hour": per_hour, **result}

    async def during(self, seconds: float) -> dict[str, Any]:
        await asyncio.sleep(seconds)
        return {}


class GoLives(Bench):
    """The push phase with go-lives at random moments, timed to their went_online."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.go_live = False
        self.channel_of: dict[str, str] = {}
        self.latencies: list[float] = []

    async def during(self, seconds: float) -> dict[str, Any]:
        if not self.go_live:
            return await super().during(seconds)
        picks = random.sample(range(self.args.channels), self.args.go_lives)
        moments = sorted(random.uniform(0, seconds * 0.8) for _ in picks)
        started = time.monotonic()
        for moment, n in zip(moments, picks, strict=True):
            await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
            self.fake.set_live(str(FIRST_ID + n))
        await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
        sent = self.fake.push.sent_at
        for channel_id, seen in self.online_at.items():
            at = sent.get(f"stream.online:{channel_id}")
            if at is not None:
                self.latencies.append(seen - at)
        missing = self.args.go_lives - len(self.latencies)
        return {
            "go_lives": self.args.go_lives,
            "went_online": len(self.latencies),
            "missing": missing,
            "p50_seconds": percentile(self.latencies, 0.5) if self.latencies else None,
            "p95_seconds": percentile(self.latencies, 0.95) if self.latencies else None,
            "max_seconds": max(self.latencies) if self.latencies else None,
        }

    async def listen(self, redis: Redis, stop: asyncio.Event) -> None:
        pubsub = redis.pubsub()
        await pubsub.psubscribe("lumio:channel_status:*")
        try:
            while not stop.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is None:
                    continue
                event = orjson.loads(message["data"])
                if event["reason"] == "went_online":
                    channel = self.channel_of.get(event["account_id"])
                    if channel is not None:
                        self.online_at.setdefault(channel, time.monotonic())
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]


async def receiver_throughput(bench: Bench, api_pid: int, count: int) -> dict[str, Any]:
    """Signed notifications straight at /webhooks/twitch: verified per second, CPU each."""
    subscriptions = list(bench.fake.subscriptions(kind="channel.update"))[:count]
    bodies = []
    for i in range(count):
        subscription = subscriptions[i % len(subscriptions)]
        event = {
            "broadcaster_user_id": subscription["condition"]["broadcaster_user_id"],
            "title": f"t{i}",
        }
        body = orjson.dumps({"subscription": subscription, "event": event})
        message_id, timestamp = str(uuid.uuid4()), rfc3339_nanos(datetime.now(UTC))
        headers = {
            "Twitch-Eventsub-Message-Id": message_id,
            "Twitch-Eventsub-Message-Timestamp": timestamp,
            "Twitch-Eventsub-Message-Signature": eventsub_signature(
                SECRET, message_id, timestamp, body
            ),
            "Twitch-Eventsub-Message-Type": "notification",
            "Content-Type": "application/json",
        }
        bodies.append((headers, body))
    queue: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    statuses: dict[int, int] = {}

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            headers, body = queue.get_nowait()
            answer = await http.post("/webhooks/twitch", headers=headers, content=body)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

    cpu_before = cpu_seconds(api_pid)
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=bench.public_url, limits=httpx.Limits(max_connections=32)
    ) as http:
        await asyncio.gather(*(client(http) for _ in range(32)))
    took = time.monotonic() - started
    cpu = cpu_seconds(api_pid) - cpu_before
    return {
        "messages": count,
        "statuses": statuses,
        "seconds": took,
        "per_second": count / took,
        "api_cpu_ms_per_message": cpu * 1000 / count,
    }


async def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError("lumio api exited at start")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/healthz", timeout=1)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("lumio api did not come up")


async def measure(args: argparse.Namespace, db_url: str, redis_url: str) -> dict[str, Any]:
    bench = GoLives(args, db_url, redis_url)
    server = FakeServer(twitch_app(bench.fake))
    bench.fake_url = server.start()
    db = await asyncpg.create_pool(db_url, min_size=2, max_size=12)
    redis = create_redis(redis_url, timedelta(seconds=5))
    command = [*LUMIO, "api", "--host", "127.0.0.1", "--port", str(bench.api_port)]
    log = (RESULTS_DIR / "push-bench-api.log").open("wb")
    api = subprocess.Popen(command, env=bench.api_env(), stdout=log, stderr=log)  # noqa: ASYNC220
    stop = asyncio.Event()
    try:
        await wait_healthy(bench.public_url, api)
        seeded = time.monotonic()
        await bench.seed(db)
        print(
            f"seeded {args.channels} channels and {3 * args.channels} subscriptions in {time.monotonic() - seeded:.1f} s",
            flush=True,
        )
        bench.channel_of = {str(r["account_id"]): r["channel_id"] for r in await db.fetch(ACCOUNTS)}
        poll_only = await bench.run_worker(db, redis, push=False, seconds=args.window)
        print(
            f"poll-only: {poll_only['per_channel_hour']:.3f} requests per channel-hour", flush=True
        )
        push = await bench.run_worker(db, redis, push=True, seconds=args.window)
        print(f"push healthy: {push['per_channel_hour']:.3f} requests per channel-hour", flush=True)
        listener = asyncio.create_task(bench.listen(redis, stop))
        bench.go_live = True
        go_lives = await bench.run_worker(db, redis, push=True, seconds=args.window)
        stop.set()
        await listener
        print(f"go-lives: {go_lives}", flush=True)
        receiver = await receiver_throughput(bench, api.pid, args.messages)
        print(f"receiver: {receiver}", flush=True)
    finally:
        stop.set()
        api.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            api.wait(15)
        log.close()
        server.stop()
        bench.fake.push.close()
        with contextlib.suppress(Exception):
            await redis.flushdb()
        await redis.aclose()
        await db.close()
    return {
        "poll_only": poll_only,
        "push_healthy": push,
        "go_lives": go_lives,
        "receiver": receiver,
    }


def checks(result: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, bool, str]]:
    go = result["go_lives"]
    ratio = result["push_healthy"]["per_channel_hour"] / result["poll_only"]["per_channel_hour"]
    # A realistic day: every channel goes live once, each go-live costing what the burst cost.
    burst_extra = (
        go["requests"]
        - result["push_healthy"]["requests"] * go["seconds"] / result["push_healthy"]["seconds"]
    )
    per_go_live = max(0.0, burst_extra) / max(1, go["went_online"])
    daily = result["push_healthy"]["per_channel_hour"] + per_go_live / 24
    result["ratio"] = ratio
    result["requests_per_go_live"] = per_go_live
    result["per_channel_hour_with_daily_go_live"] = daily
    return [
        (
            "go-live to went_online p95 <= 3 s",
            go["p95_seconds"] is not None
            and go["p95_seconds"] <= P95_TARGET
            and go["missing"] == 0,
            f"p50 {go['p50_seconds']:.2f} s, p95 {go['p95_seconds']:.2f} s, {go['went_online']}/{go['go_lives']} seen"
            if go["p95_seconds"] is not None
            else "none seen",
        ),
        (
            "Helix requests per channel-hour, push / poll-only <= 1/4",
            ratio <= REQUEST_RATIO_TARGET,
            f"{ratio:.3f} (steady); with one go-live per channel a day {daily / result['poll_only']['per_channel_hour']:.3f}",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--go-lives", type=int, default=1_000)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--messages", type=int, default=5_000)
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with (
        embedded_services(
            # Without the URLs: embedded servers in a temp folder of this run, stopped on exit.
            Path(tempfile.mkdtemp(prefix="push_bench-")) / "embedded",
            os.environ.get("DATABASE_URL"),
            os.environ.get("REDIS_URL"),
        ) as (admin, redis_url),
        bench_database(admin) as db_url,
    ):
        result = asyncio.run(measure(args, db_url, redis_url))
    verdicts = checks(result, args)
    for name, ok, detail in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    receiver = result["receiver"]
    print(
        f"      receiver: {receiver['per_second']:.0f} verified messages/s per API process, {receiver['api_cpu_ms_per_message']:.2f} ms CPU each"
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"push-{stamp}.json"
    out.write_text(
        json.dumps({"args": vars(args), **result, "checks": verdicts}, indent=2, default=str)
    )
    print(f"results: {out}")
    return 0 if all(ok for _, ok, _ in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
