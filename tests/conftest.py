"""Fixtures: real PostgreSQL and Redis (the configured ones, or embedded servers started here).

Each test session gets a database of its own, built by the project's migrations; each test
starts from empty tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from lumio.accounts import service as accounts
from lumio.api.app import create_app
from lumio.auth.service import create_api_key
from lumio.db import migrate
from lumio.db.pool import create_pool, database_url_named
from lumio.embedded import embedded_services
from lumio.kit.permissions import RoleName
from lumio.kit.resources import create_redis
from lumio.kit.settings import ApiSettings, DatabaseSettings, RedisSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
# push_* are keyed by platform channel, not account: no cascade reaches them.
TABLES = "accounts, users, push_subscriptions, push_hints, push_secrets"


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[str, str]]:
    """(admin database URL, Redis URL): from DATABASE_URL / REDIS_URL or embedded servers."""
    with embedded_services(
        ROOT / ".lumio-test", os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    ) as urls:
        yield urls


@pytest.fixture(scope="session")
async def database_url(servers: tuple[str, str]) -> AsyncIterator[str]:
    admin_url = servers[0]
    name = f"lumio_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url_named(admin_url, name)
    try:
        # Alembic's env runs its own event loop: give it a thread without one.
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
def redis_url(servers: tuple[str, str]) -> str:
    return servers[1]


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        db=DatabaseSettings(url=database_url, pool_min=1, pool_max=5),
        redis=RedisSettings(url=redis_url),
        data_dir=ROOT / ".lumio-test",
        # Every in-process test client signs in from 127.0.0.1; the throttle's own tests
        # use addresses of their own.
        api=ApiSettings(login_max_failures_per_address=100_000),
    )


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = create_redis(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
async def _empty_tables(request: pytest.FixtureRequest) -> None:
    if "db" in request.fixturenames or "api" in request.fixturenames:
        pool: asyncpg.Pool = request.getfixturevalue("db")
        await pool.execute(f"TRUNCATE {TABLES} CASCADE")


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@contextlib.asynccontextmanager
async def asgi_client(
    app: FastAPI, base_url: str = "http://lumio.test", raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling ``app`` in this process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


@pytest.fixture
async def api(app: FastAPI, db: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@dataclass(frozen=True)
class Member:
    user_id: UUID
    account_id: UUID
    email: str
    password: str
    api_key: str
    role: RoleName

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


PASSWORD = "correct horse battery"


class Factory:
    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db

    async def account(self, name: str = "Streamer") -> tuple[UUID, Member]:
        """A new account and its owner."""
        email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
        user_id = await accounts.create_user(self.db, email, PASSWORD)
        account_id = await accounts.create_account(self.db, name, email)
        key = await create_api_key(self.db, user_id, account_id, "test")
        return account_id, Member(user_id, account_id, email, PASSWORD, key.key, RoleName.OWNER)

    async def member(self, account_id: UUID, role: RoleName) -> Member:
        email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
        user_id = await accounts.create_user(self.db, email, PASSWORD)
        await accounts.add_member(self.db, account_id, email, role)
        key = await create_api_key(self.db, user_id, account_id, "test")
        return Member(user_id, account_id, email, PASSWORD, key.key, role)


@pytest.fixture
def factory(db: asyncpg.Pool) -> Factory:
    return Factory(db)
