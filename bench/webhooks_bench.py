"""Benchmark of webhook delivery (issue 13).

    .venv/bin/python -m bench.webhooks_bench [--endpoints 1000] [--changes 10000] [--rate 1000]

Creates a database of its own (on DATABASE_URL's server, or an embedded PostgreSQL), seeds
``--endpoints`` accounts with one standard endpoint each on a local receiver (its own process,
``bench/webhook_receiver.py``), and starts one delivery process (``DeliveryLoop``, production
settings but LUMIO_WEBHOOK_ALLOW_PRIVATE). Then:

1. **cost to the status write**: the worker's store transaction (``set_online_many`` /
   ``set_offline_many`` over a batch of 100 channels, as ``detection/worker.py`` does) is timed
   with the outbox on and off, alternating batch by batch in the same run;
2. **latency**: ``--changes`` status changes at ``--rate`` per second in batches of 100 (outbox
   on); commit-to-delivery latency per delivery is the receiver's arrival time minus the row's
   ``created_at`` (the transaction's start: the figure errs high by the transaction's length);
3. **throughput**: ``--changes`` more committed at once; deliveries per second of the one
   delivery process until the backlog is gone.

Prints PASS/FAIL against the targets (p95 < 1 s; outbox cost ≤ +20 %) and writes JSON to
``bench/results/``. The database and the processes it started are removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from lumio.channel_status import repository as status
from lumio.channel_status.schemas import OfflineWrite, OnlineWrite
from lumio.db.migrate import upgrade
from lumio.db.pool import create_pool, database_url_named
from lumio.dev.fakes.server import free_port
from lumio.embedded import embedded_services
from lumio.events.schemas import Reason, StatusEvent
from lumio.kit.crypto import TokenCipher, decode_key, new_key, webhook_secret_context
from lumio.kit.settings import WebhookSettings
from lumio.platforms.base import LiveStream, Platform
from lumio.webhooks import outbox
from lumio.webhooks.delivery import DeliveryLoop
from lumio.webhooks.schemas import StreamContext
from lumio.webhooks.signing import new_secret

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
BATCH = 100
P95_TARGET = 1.0
COST_TARGET = 0.20


@contextlib.contextmanager
def process(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(args, cwd=ROOT, env=os.environ | (env or {}))
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()


async def seed(db: asyncpg.Pool, endpoints: int, receiver: str, key: str) -> list[uuid.UUID]:
    cipher = TokenCipher(decode_key(key))
    accounts = [uuid.uuid4() for _ in range(endpoints)]
    ids = [uuid.uuid4() for _ in range(endpoints)]
    await db.execute(
        "INSERT INTO accounts (id, name) SELECT a, 'bench' FROM unnest($1::uuid[]) a", accounts
    )
    secrets = [cipher.encrypt(new_secret(), webhook_secret_context(i)) for i in ids]
    await db.execute(
        "INSERT INTO webhook_endpoints (id, account_id, kind, url, events, secret)"
        " SELECT i, a, 'standard', $3 || '/hook/' || n, ARRAY['went_online', 'went_offline'], s"
        " FROM unnest($1::uuid[], $2::uuid[], $4::bytea[]) WITH ORDINALITY AS t (i, a, s, n)",
        ids,
        accounts,
        receiver,
        secrets,
    )
    return accounts


async def store(
    db: asyncpg.Pool, accounts: list[uuid.UUID], online: bool, with_outbox: bool
) -> float:
    """One worker store transaction over a batch; returns its seconds."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    async with db.acquire() as conn, conn.transaction():
        if online:
            writes = [OnlineWrite(a, Platform.KICK, "t", "c", 1, now, now) for a in accounts]
            await status.set_online_many(conn, writes)
        else:
            await status.set_offline_many(
                conn, [OfflineWrite(a, Platform.KICK, now) for a in accounts]
            )
        if with_outbox:
            reason = Reason.WENT_ONLINE if online else Reason.WENT_OFFLINE
            events = [StatusEvent(a, reason, now, "kick", online) for a in accounts]
            # What the worker passes along: the channel and its stream (title, viewers, start).
            stream = LiveStream("A stream title of ordinary length", "Just Chatting", 1, now, "s")
            context = StreamContext("1234567", "some_streamer", stream)
            contexts = {(a, "kick"): context for a in accounts}
            await outbox.enqueue_status_events(conn, events, contexts)
    return time.perf_counter() - started


async def cost(db: asyncpg.Pool, accounts: list[uuid.UUID], rounds: int) -> dict[str, float]:
    """Outbox off against on, alternating, over the same channels; medians."""
    timings: dict[bool, list[float]] = {False: [], True: []}
    for n in range(rounds):
        batch = accounts[(n * BATCH) % len(accounts) :][:BATCH]
        for with_outbox in (n % 2 == 0, n % 2 == 1):
            timings[with_outbox].append(await store(db, batch, n % 4 < 2, with_outbox))
    await db.execute("DELETE FROM webhook_outbox")
    off, on = statistics.median(timings[False]), statistics.median(timings[True])
    return {"store_ms_off": off * 1000, "store_ms_on": on * 1000, "cost": on / off - 1}


async def changes(db: asyncpg.Pool, accounts: list[uuid.UUID], count: int, rate: float) -> None:
    """``count`` changes in batches of 100 at ``rate`` per second (0: all at once)."""
    start = time.monotonic()
    for n in range(count // BATCH):
        batch = accounts[(n * BATCH) % len(accounts) :][:BATCH]
        await store(db, batch, n // (len(accounts) // BATCH) % 2 == 0, True)
        if rate:
            await asyncio.sleep(max(0.0, start + (n + 1) * BATCH / rate - time.monotonic()))


async def wait_delivered(db: asyncpg.Pool, limit: float) -> float:
    """When no delivery is pending any more (polled: the sender is another process)."""
    pending = "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'"
    deadline = time.monotonic() + limit
    while True:
        if not await db.fetchval(pending):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError("deliveries still pending")
        await asyncio.sleep(0.05)


async def arrivals(receiver: str) -> tuple[dict[str, float], int]:
    async with httpx.AsyncClient() as http:
        answer = (await http.get(receiver + "/arrivals", timeout=30)).json()
    return answer["arrivals"], answer["duplicates"]


async def latencies(db: asyncpg.Pool, receiver: str) -> list[float]:
    arrived, _ = await arrivals(receiver)
    rows = await db.fetch("SELECT id, extract(epoch FROM queued_at) AS t FROM webhook_deliveries")
    return [arrived[str(r["id"])] - float(r["t"]) for r in rows if str(r["id"]) in arrived]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def deliver(database_url: str, key: str) -> None:
    """The delivery process: one DeliveryLoop until terminated."""
    settings = WebhookSettings(allow_private=True)
    db = await create_pool(database_url, min_size=2, max_size=4)
    loop = DeliveryLoop(db, TokenCipher(decode_key(key)), settings)
    await loop.start()


async def run(args: argparse.Namespace, server_url: str) -> dict[str, Any]:
    name = f"lumio_hookbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url_named(server_url, name)
    try:
        await asyncio.to_thread(upgrade, url)
        return await measure(args, url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def measure(args: argparse.Namespace, url: str) -> dict[str, Any]:
    port, key = free_port(), new_key()
    receiver = f"http://127.0.0.1:{port}"
    db = await create_pool(url, min_size=2, max_size=4)
    uvicorn = (sys.executable, "-m", "uvicorn", "bench.webhook_receiver:app", "--port", str(port))
    with process(*uvicorn, "--no-access-log", "--log-level", "warning"):
        accounts = await seed(db, args.endpoints, receiver, key)
        result: dict[str, Any] = await cost(db, accounts, args.cost_rounds)
        me = (sys.executable, "-m", "bench.webhooks_bench", "--deliver", url, key)
        with process(*me):
            await asyncio.sleep(1.0)
            await changes(db, accounts, args.changes, args.rate)
            await wait_delivered(db, 300)
            lat = await latencies(db, receiver)
            backlog_start = time.monotonic()
            await changes(db, accounts, args.changes, 0)
            committed = time.monotonic()
            done = await wait_delivered(db, 600)
        _, duplicates = await arrivals(receiver)
    await db.close()
    result |= {
        "deliveries": len(lat),
        "p50_s": statistics.median(lat),
        "p95_s": percentile(lat, 0.95),
        "p99_s": percentile(lat, 0.99),
        "backlog_commit_s": committed - backlog_start,
        "deliveries_per_s": args.changes / (done - backlog_start),
        "duplicates": duplicates,
    }
    return result


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    p95_ok, cost_ok = result["p95_s"] < P95_TARGET, result["cost"] <= COST_TARGET
    print(f"endpoints {args.endpoints}, changes {args.changes} at {args.rate}/s (batches of 100)")
    print(
        f"commit-to-delivery: p50 {result['p50_s'] * 1000:.0f} ms, p95 "
        f"{result['p95_s'] * 1000:.0f} ms, p99 {result['p99_s'] * 1000:.0f} ms over "
        f"{result['deliveries']} deliveries: {'PASS' if p95_ok else 'FAIL'} (p95 < 1 s)"
    )
    print(f"deliveries/s, one process, backlog of {args.changes}: {result['deliveries_per_s']:.0f}")
    print(
        f"store transaction (100 channels): {result['store_ms_off']:.2f} ms without outbox, "
        f"{result['store_ms_on']:.2f} ms with: {result['cost'] * 100:+.1f} % "
        f"{'PASS' if cost_ok else 'FAIL'} (≤ +20 %)"
    )
    print(f"duplicates at the receiver: {result['duplicates']}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"webhooks_bench-{int(time.time())}.json"
    out.write_text(json.dumps({"args": vars(args), "result": result}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="changes per second")
    parser.add_argument("--cost-rounds", type=int, default=200)
    parser.add_argument("--deliver", nargs=2, metavar=("URL", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.deliver:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(deliver(*args.deliver))
        return
    given = os.environ.get("DATABASE_URL")
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_services(Path(tmp), given, "redis://unused") as (server, _),
    ):
        report(args, asyncio.run(run(args, server)))


if __name__ == "__main__":
    main()
