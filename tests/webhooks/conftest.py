"""A local receiver (Standard Webhooks and a Discord stand-in) over loopback, an API with
LUMIO_WEBHOOK_ALLOW_PRIVATE, and a delivery loop to drive by hand."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lumio.api.app import create_app
from lumio.dev.fakes.server import FakeServer
from lumio.kit.crypto import cipher_for, new_key
from lumio.kit.settings import Settings
from lumio.webhooks.delivery import DeliveryLoop

# How long the receiver takes under /slow (within the 5 s send timeout).
SLOW_SECONDS = 2.0


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """Records what arrives; answers the queued statuses first, then 200."""

    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.statuses.clear()
            self.ids = itertools.count(1)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        if request.url.path.startswith("/slow"):
            await asyncio.sleep(SLOW_SECONDS)
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 200
            if status == 200:
                self.received.append(
                    Received(
                        request.method,
                        request.url.path,
                        request.url.query,
                        dict(request.headers),
                        body,
                    )
                )
            message_id = str(next(self.ids)) if status == 200 else ""
        if status == 429:
            return JSONResponse({"retry_after": 0.05, "global": False}, 429)
        if request.url.path.startswith("/discord") and status == 200:
            return JSONResponse({"id": request.path_params.get("mid") or message_id})
        return Response(b"ok" if status == 200 else b"nope", status)


def receiver_app(receiver: Receiver) -> Starlette:
    methods = ["POST", "PATCH"]
    return Starlette(
        routes=[
            Route("/discord/hook/messages/{mid}", receiver.handle, methods=methods),
            Route("/{path:path}", receiver.handle, methods=methods),
        ]
    )


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()
    with FakeServer(receiver_app(receiver)) as url:
        receiver.url = url
        yield receiver


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.reset()
    return receiver_server


@pytest.fixture(scope="session")
def hook_settings(settings: Settings) -> Settings:
    return settings.updated(
        {"webhooks": {"allow_private": True}, "spotify": {"token_key": new_key()}}
    )


@pytest.fixture(scope="session")
async def hook_app(hook_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(hook_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(hook_app: FastAPI, db: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=hook_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lumio.test") as c:
        yield c


def make_loop(settings: Settings, db: asyncpg.Pool) -> DeliveryLoop:
    return DeliveryLoop(db, cipher_for(settings), settings.webhooks)


@pytest.fixture
async def loop(hook_settings: Settings, db: asyncpg.Pool) -> AsyncIterator[DeliveryLoop]:
    loop = make_loop(hook_settings, db)
    yield loop
    await loop.sender.aclose()


async def drain(loop: DeliveryLoop, db: asyncpg.Pool, rounds: int = 5) -> None:
    """Run the loop until nothing is due, making retries due at once (no waiting)."""
    for _ in range(rounds):
        await loop.start(loops=1)
        await db.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second'"
            " WHERE state = 'pending'"
        )
