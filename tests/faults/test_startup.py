"""Processes that wait instead of dying, and migrations only on purpose (issue 9)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from lumio.db.pool import database_url_named
from lumio.db.schema import head_revision
from lumio.dev.fakes.server import free_port
from tests.faults.proxy import FaultProxy

LUMIO = [sys.executable, "-c", "from lumio.cli import main; main()"]
# The Spotify worker refuses to start without credentials; nothing here reaches Spotify.
SPOTIFY = {
    "LUMIO_SPOTIFY_CLIENT_ID": "fault-suite",
    "LUMIO_SPOTIFY_CLIENT_SECRET": "fault-suite-secret",
    "LUMIO_SPOTIFY_TOKEN_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
}
FAST = {
    "LUMIO_DB_CONNECT_TIMEOUT_SECONDS": "1.5",
    "LUMIO_STARTUP_RETRY_MAX_SECONDS": "1",
    "LUMIO_HEALTH_TIMEOUT_SECONDS": "1",
}


def environment(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LUMIO_")}
    return base | FAST | {"DATABASE_URL": database_url, "REDIS_URL": redis_url} | extra


async def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *LUMIO, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.fixture
async def empty_database(servers: tuple[str, str]) -> AsyncIterator[str]:
    admin_url = servers[0]
    name = f"lumio_empty_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url_named(admin_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_only_migrate_changes_the_schema_and_the_others_refuse_in_one_line(
    empty_database: str, redis_url: str
) -> None:
    env = environment(empty_database, redis_url, LUMIO_WORKER_METRICS_PORT="0")
    refusals = await asyncio.gather(
        run(env, "worker"),
        run(env, "api", "--port", str(free_port())),
        run(env, "channels", "list", str(uuid.uuid4())),
    )
    expected = f"this release needs {head_revision()}: run `lumio migrate`"
    for code, out in refusals:
        assert code == 2, out
        assert "database schema is at nothing (empty database)" in out and expected in out, out
        assert "Traceback" not in out, out
    # Two deploys at once: they take turns on the advisory lock; both succeed.
    migrated = await asyncio.gather(run(env, "migrate"), run(env, "migrate"))
    assert [code for code, _ in migrated] == [0, 0], migrated
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
    finally:
        await conn.close()


async def test_processes_started_without_postgresql_wait_and_come_up(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    with FaultProxy(database_url) as pg:
        pg.refuse()
        api_port, probe_port, spotify_port = free_port(), free_port(), free_port()
        # No platform configured: the worker stays up and says so, rather than exiting.
        env = environment(pg.url, redis_url, LUMIO_WORKER_METRICS_PORT=str(probe_port))
        spotify_env = env | SPOTIFY | {"LUMIO_SPOTIFY_WORKER_METRICS_PORT": str(spotify_port)}
        spotify = f"http://127.0.0.1:{spotify_port}"
        processes = [
            spawn(["api", "--port", str(api_port)], env, tmp_path / "api.log"),
            spawn(["worker"], env, tmp_path / "worker.log"),
            spawn(["spotify-worker"], spotify_env, tmp_path / "spotify.log"),
        ]
        try:
            async with httpx.AsyncClient(timeout=3) as http:
                api = f"http://127.0.0.1:{api_port}/healthz"
                probe = f"http://127.0.0.1:{probe_port}"
                assert (await until(http, api, {503})).status_code == 503
                assert (await until(http, f"{probe}/healthz", {200})).status_code == 200
                assert (await http.get(f"{probe}/readyz")).status_code == 503
                await until(http, f"{spotify}/healthz", {200})
                assert (await http.get(f"{spotify}/readyz")).status_code == 503
                await asyncio.sleep(2)
                assert all(p.poll() is None for p in processes)
                pg.restore()
                restored = time.monotonic()
                await until(http, api, {200})
                ready = await until(http, f"{probe}/readyz", {503}, idle=True)
                assert time.monotonic() - restored < 10
                assert "no platform" in ready.json()["idle"]
                await until(http, f"{spotify}/readyz", {200})
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(20) for process in processes]
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert codes[0] in (0, -signal.SIGTERM) and codes[1:] == [0, 0], codes
    for name in ("worker", "spotify"):
        log = (tmp_path / f"{name}.log").read_text()
        assert log.count("unreachable") == 1, log
        assert "Traceback" not in log


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*LUMIO, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


async def until(
    http: httpx.AsyncClient,
    url: str,
    statuses: set[int],
    *,
    idle: bool = False,
    redis: bool | None = None,
    within: float = 60,
) -> httpx.Response:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            response = await http.get(url)
            if response.status_code in statuses and _says(response, idle, redis):
                return response
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never answered {statuses}")


def _says(response: httpx.Response, idle: bool, redis: bool | None) -> bool:
    if idle and "idle" not in response.json():
        return False
    return redis is None or response.json().get("redis") is redis


async def test_processes_started_without_redis_wait_and_come_up(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """README "When things fail": the API serves without Redis; both workers wait for it."""
    with FaultProxy(redis_url) as redis:
        redis.refuse()
        api_port, worker_port, spotify_port = free_port(), free_port(), free_port()
        env = environment(database_url, redis.url, LUMIO_WORKER_METRICS_PORT=str(worker_port))
        spotify_env = env | SPOTIFY | {"LUMIO_SPOTIFY_WORKER_METRICS_PORT": str(spotify_port)}
        processes = [
            spawn(["api", "--port", str(api_port)], env, tmp_path / "api.log"),
            spawn(["worker"], env, tmp_path / "worker.log"),
            spawn(["spotify-worker"], spotify_env, tmp_path / "spotify.log"),
        ]
        probes = [f"http://127.0.0.1:{port}" for port in (worker_port, spotify_port)]
        try:
            async with httpx.AsyncClient(timeout=3) as http:
                health = await until(http, f"http://127.0.0.1:{api_port}/healthz", {200})
                assert health.json()["redis"] is False
                for probe in probes:
                    await until(http, f"{probe}/healthz", {200})
                    assert (await http.get(f"{probe}/readyz")).status_code == 503
                await asyncio.sleep(2)
                assert all(p.poll() is None for p in processes)
                redis.restore()
                await until(http, f"http://127.0.0.1:{api_port}/healthz", {200}, redis=True)
                await until(http, f"{probes[1]}/readyz", {200})
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(20) for process in processes]
    assert codes[0] in (0, -signal.SIGTERM) and codes[1:] == [0, 0], codes
    for name in ("worker", "spotify"):
        assert "Traceback" not in (tmp_path / f"{name}.log").read_text()
