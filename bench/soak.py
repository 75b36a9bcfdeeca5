"""A one-minute soak (issue 9): the API under load while a worker polls 10,000 channels on a fake
that fails 5 % of its answers. Not part of the test command.

    .venv/bin/python -m bench.soak [--channels 10000] [--duration 60] [--error-rate 0.05]

Reports the API's error rate and latency (p50 / p99) per third of the run, the worker's polls
and errors, and the resident memory of both processes at the start and at the end (growth
beyond 10 % fails the run). Without DATABASE_URL / REDIS_URL it starts embedded servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.fakes_server import channel_id, seed_app
from lumio.accounts import service as accounts
from lumio.auth.service import create_api_key
from lumio.db import migrate
from lumio.db.pool import database_url_named
from lumio.dev.fakes.server import free_port
from lumio.embedded import embedded_services
from lumio.platforms.base import Platform

VENV_BIN = Path(sys.executable).parent
MEMORY_GROWTH_LIMIT = 0.10


class Flaky:
    """ASGI wrapper: a share of the platform's data answers are 500s."""

    def __init__(self, app: ASGIApp, rate: float) -> None:
        self.app, self.rate = app, rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and "/public/" in path and random.random() < self.rate:
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        await self.app(scope, receive, send)


def serve_fake(port: int, channels: int, rate: float) -> None:
    import uvicorn

    app = Flaky(seed_app(Platform.KICK, channels, 10), rate)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


async def seed(url: str, channels: int) -> str:
    """Accounts each linking one Kick channel, and an owner's API key for the load."""
    db = await asyncpg.connect(url)
    try:
        await db.execute(
            "INSERT INTO accounts (id, name) SELECT gen_random_uuid(), 'soak ' || n "
            "FROM generate_series(0, $1 - 1) n",
            channels,
        )
        ids = [channel_id(Platform.KICK, n) for n in range(channels)]
        await db.execute(
            "INSERT INTO platform_channels (account_id, platform, channel_id, display_name) "
            "SELECT a.id, 'kick', c.id, c.id FROM "
            "(SELECT id, row_number() OVER (ORDER BY id) AS n FROM accounts) a "
            "JOIN (SELECT id, ordinality AS n FROM unnest($1::text[]) WITH ORDINALITY id) c "
            "USING (n)",
            ids,
        )
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        assert pool is not None
        email = f"soak-{uuid.uuid4().hex[:8]}@example.com"
        user = await accounts.create_user(pool, email, "soak password 123")
        account = await accounts.create_account(pool, "soak owner", email)
        key = (await create_api_key(pool, user, account, "soak")).key
        await pool.close()
        return key
    finally:
        await db.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_window(port: int, key: str, seconds: float, work: Path) -> dict[str, object]:
    request = (
        f"GET /v1/channel-status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    config = {
        "requests": [request],
        "duration": seconds,
        "connections": 16,
        "host": "127.0.0.1",
        "port": port,
    }
    path = work / "load.json"
    path.write_text(json.dumps(config))
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", str(path)], capture_output=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def worker_counts(port: int) -> tuple[float, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    polls = errors = 0.0
    for line in text.splitlines():
        if line.startswith("lumio_polls_total{"):
            polls += float(line.rsplit(" ", 1)[1])
        elif line.startswith("lumio_poll_errors_total{"):
            errors += float(line.rsplit(" ", 1)[1])
    return polls, errors


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_http(url: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"soak: {url} did not come up")


def soak(args: argparse.Namespace, work: Path, stack: ExitStack) -> bool:
    admin, redis_url = stack.enter_context(
        embedded_services(
            work / "servers", os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
        )
    )
    name = f"lumio_soak_{os.getpid()}"
    asyncio.run(_create_database(admin, name))
    url = database_url_named(admin, name)
    migrate.upgrade(url)
    key = asyncio.run(seed(url, args.channels))
    fake_port, api_port, metrics_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUMIO_")}
    env |= {"DATABASE_URL": url, "REDIS_URL": redis_url}
    fake_url = f"http://127.0.0.1:{fake_port}"
    worker_env = env | {
        "LUMIO_KICK_CLIENT_ID": "lumio-dev-kick",
        "LUMIO_KICK_CLIENT_SECRET": "lumio-dev-kick-secret",
        "LUMIO_KICK_API_BASE": fake_url,
        "LUMIO_KICK_ID_BASE": fake_url,
        "LUMIO_WORKER_METRICS_PORT": str(metrics_port),
    }
    processes = [
        subprocess.Popen([sys.executable, "-m", "bench.soak", "--serve-fake", str(fake_port),
                          "--channels", str(args.channels), "--error-rate", str(args.error_rate)]),
        subprocess.Popen([str(VENV_BIN / "lumio"), "api", "--port", str(api_port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]  # fmt: skip
    stack.callback(stop_all, processes)
    wait_http(f"{fake_url}/_control/stats")
    processes.append(
        subprocess.Popen([str(VENV_BIN / "lumio"), "worker"], env=worker_env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    )  # fmt: skip
    wait_http(f"http://127.0.0.1:{api_port}/healthz")
    wait_http(f"http://127.0.0.1:{metrics_port}/readyz")
    api, worker = processes[1].pid, processes[2].pid
    memory_start = (rss_mb(api), rss_mb(worker))
    polls_start, errors_start = worker_counts(metrics_port)
    windows = [load_window(api_port, key, args.duration / 3, work) for _ in range(3)]
    memory_end = (rss_mb(api), rss_mb(worker))
    polls, errors = worker_counts(metrics_port)
    return report(windows, memory_start, memory_end, polls - polls_start, errors - errors_start)


async def _create_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def report(
    windows: list[dict[str, object]],
    memory_start: tuple[float, float],
    memory_end: tuple[float, float],
    polls: float,
    errors: float,
) -> bool:
    for n, w in enumerate(windows, start=1):
        requests = int(str(w["requests"]))
        failed = int(str(w["non_2xx"])) + int(str(w["socket_errors"]))
        print(
            f"third {n}: {requests:,} requests, {float(str(w['rps'])):,.0f} req/s, "
            f"errors {failed / max(requests, 1):.3%}, p50 {w['p50_ms']:.1f} ms, "
            f"p99 {w['p99_ms']:.1f} ms"
        )
    print(f"worker: {polls:,.0f} polls, {errors:,.0f} unknown (injected errors)")
    growth = []
    for what, start, end in zip(("api", "worker"), memory_start, memory_end, strict=True):
        growth.append((end - start) / start)
        print(f"{what} RSS: {start:.0f} MB at start, {end:.0f} MB at end ({growth[-1]:+.1%})")
    ok = all(g <= MEMORY_GROWTH_LIMIT for g in growth)
    print("memory growth within 10 %:", "PASS" if ok else "FAIL")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--serve-fake", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.serve_fake, args.channels, args.error_rate)
        return
    with tempfile.TemporaryDirectory(prefix="lumio-soak-") as tmp, ExitStack() as stack:
        ok = soak(args, Path(tmp), stack)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
