"""Sign-in resists guessing (issue 10, item 2): failures counted in Redis per account and per
client address, a growing delay, then 429 with Retry-After; success resets the account."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from lumio.api.app import create_app
from lumio.auth.throttle import LoginThrottle, account_key, delay_after
from lumio.kit.settings import Settings
from tests.conftest import Factory


@pytest.fixture
async def throttled_app(settings: Settings) -> AsyncIterator[FastAPI]:
    quick = settings.updated(
        {
            "api": {
                "login_delay_base_seconds": 0.02,
                "login_delay_max_seconds": 0.16,
                "login_max_failures_per_address": 30,
            }
        }
    )
    application = create_app(quick)
    async with application.router.lifespan_context(application):
        yield application


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://lumio.test")


def fresh_address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def test_the_delay_grows_and_is_capped() -> None:
    assert [delay_after(n, 0.1, 1.0) for n in range(6)] == [0.0, 0.1, 0.2, 0.4, 0.8, 1.0]


async def test_fifty_wrong_passwords_end_in_429_until_the_window_ends(
    throttled_app: FastAPI, factory: Factory, redis: Redis
) -> None:
    _, owner = await factory.account()
    wrong = {"email": owner.email, "password": "not the password"}
    statuses: list[int] = []
    async with client_from(throttled_app, fresh_address()) as api:
        for _ in range(50):
            statuses.append((await api.post("/v1/auth/login", json=wrong)).status_code)
        assert statuses[:10] == [401] * 10
        assert statuses[10:] == [429] * 40
        refused = await api.post("/v1/auth/login", json=wrong)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "TOO_MANY_REQUESTS"
        assert 1 <= int(refused.headers["retry-after"]) <= 900
        right = {"email": owner.email, "password": owner.password}
        # The right password does not get through while the account is throttled...
        assert (await api.post("/v1/auth/login", json=right)).status_code == 429
        # ... and works once the window is over, resetting the account's counter.
        await redis.delete(account_key(owner.email))
        await api.post("/v1/auth/login", json=wrong)
        assert (await api.post("/v1/auth/login", json=right)).status_code == 200
        assert await redis.get(account_key(owner.email)) is None


async def test_the_delay_grows_with_failures(redis: Redis, settings: Settings) -> None:
    throttle = LoginThrottle.of(redis, settings)
    email, address = f"{uuid.uuid4().hex}@example.com", fresh_address()
    delays = []
    for _ in range(5):
        delays.append(await throttle.admit(email, address))
        await throttle.failed(email, address)
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8]
    assert 890 <= await redis.ttl(account_key(email)) <= 900
    await throttle.succeeded(email)
    assert await throttle.admit(email, address) == 0.0


async def test_an_unknown_email_is_answered_like_a_wrong_password(
    throttled_app: FastAPI, factory: Factory
) -> None:
    _, owner = await factory.account()
    async with client_from(throttled_app, fresh_address()) as api:
        known = await api.post("/v1/auth/login", json={"email": owner.email, "password": "x"})
        unknown = await api.post(
            "/v1/auth/login", json={"email": "nobody-" + owner.email, "password": "x"}
        )
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
        assert dict(known.headers) == dict(unknown.headers) | {
            "content-length": known.headers["content-length"]
        }
        for _ in range(12):
            last = await api.post("/v1/auth/login", json={"email": "ghost@x.io", "password": "x"})
        assert last.status_code == 429


async def test_one_address_guessing_many_accounts_gets_429(
    throttled_app: FastAPI, factory: Factory
) -> None:
    address = fresh_address()
    async with client_from(throttled_app, address) as api:
        for n in range(30):
            guess = {"email": f"user{n}@example.com", "password": "guess"}
            assert (await api.post("/v1/auth/login", json=guess)).status_code == 401
        _, owner = await factory.account()
        right = {"email": owner.email, "password": owner.password}
        assert (await api.post("/v1/auth/login", json=right)).status_code == 429
    # Another address is not affected.
    async with client_from(throttled_app, fresh_address()) as api:
        assert (await api.post("/v1/auth/login", json=right)).status_code == 200
