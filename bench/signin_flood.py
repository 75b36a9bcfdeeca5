"""Channel-status latency while 200 wrong sign-ins run at once (issue 10, item 2).

    .venv/bin/python -m bench.signin_flood [--seconds 8] [--workers 1]

Starts `lumio api` on embedded (or configured) PostgreSQL and Redis with
LUMIO_PASSWORD_WORKERS=--workers, reads GET /v1/channel-status with 8 concurrent clients, first
alone and then while 200 clients keep sending wrong sign-ins (each from its own forwarded
address and email, so the throttle never answers 429 and every one costs an Argon2
verification), and prints p50/p99 of the reads and the sign-ins answered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from tests.apiserver import ApiProcess

from lumio.accounts import service as accounts
from lumio.auth.service import create_api_key
from lumio.db import migrate
from lumio.db.pool import create_pool
from lumio.embedded import embedded_services


async def seed(database_url: str) -> str:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    user_id = await accounts.create_user(pool, email, "bench-password")
    account_id = await accounts.create_account(pool, "Bench", email)
    key = await create_api_key(pool, user_id, account_id, "bench")
    await pool.close()
    return key.key


async def reads(client: httpx.AsyncClient, key: str, until: float, out: list[float]) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        answer = await client.get("/v1/channel-status", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        out.append((time.monotonic() - started) * 1000)


async def wrong_sign_ins(client: httpx.AsyncClient, n: int, until: float, out: list[int]) -> None:
    while time.monotonic() < until:
        body = {"email": f"nobody{n}-{uuid.uuid4().hex[:6]}@example.com", "password": "wrong"}
        forwarded = {"X-Forwarded-For": f"10.9.{n % 250}.{uuid.uuid4().int % 250}"}
        try:
            answer = await client.post(
                "/v1/auth/login", json=body, headers=forwarded, timeout=until - time.monotonic() + 1
            )
        except httpx.TimeoutException:
            return  # still queued for Argon2 when the measurement ended
        out.append(answer.status_code)


def summary(latencies: list[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    return f"{len(latencies)} reads, p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms"


async def measure(base_url: str, key: str, seconds: float) -> None:
    limits = httpx.Limits(max_connections=300)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        alone: list[float] = []
        until = time.monotonic() + seconds
        await asyncio.gather(*(reads(client, key, until, alone) for _ in range(8)))
        print("channel-status alone:            ", summary(alone))
        flooded: list[float] = []
        statuses: list[int] = []
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(reads(client, key, until, flooded) for _ in range(8)),
            *(wrong_sign_ins(client, n, until, statuses) for n in range(200)),
        )
        print("channel-status, 200 sign-ins:    ", summary(flooded))
        print(f"sign-ins answered: {len(statuses)} ({sorted(set(statuses))})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="lumio-flood-"))
    urls = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    with embedded_services(data, *urls) as (database_url, redis_url):
        migrate.upgrade(database_url)
        key = asyncio.run(seed(database_url))
        env = {"LUMIO_PASSWORD_WORKERS": str(args.workers), "LUMIO_DATA_DIR": str(data)}
        with ApiProcess(database_url, redis_url, data / "api.log", env=env) as server:
            asyncio.run(measure(server.base_url, key, args.seconds))
    sys.exit(0)


if __name__ == "__main__":
    main()
