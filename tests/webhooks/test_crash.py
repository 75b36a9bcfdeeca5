"""A worker SIGKILLed between the commit of a change and the send of its delivery: after a
restart the delivery goes out once, with the same webhook-id (not lost, not duplicated)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook as ReferenceVerifier

from tests.conftest import Factory
from tests.webhooks.conftest import Receiver, drain

# The worker's store transaction (a status write and its outbox rows, committed together), then,
# with "claimed", the delivery loop's claim (the lease is taken), then death before the send.
CHILD = """
import asyncio, os, signal, sys
from datetime import UTC, datetime, timedelta
from uuid import UUID
import asyncpg
from lumio.channel_status import repository as status
from lumio.channel_status.schemas import OnlineWrite
from lumio.events.schemas import Reason, StatusEvent
from lumio.platforms.base import Platform
from lumio.webhooks import outbox, repository

async def main(url: str, account: UUID, claim: bool) -> None:
    db = await asyncpg.create_pool(url, min_size=1, max_size=2)
    now = datetime.now(UTC)
    async with db.acquire() as conn, conn.transaction():
        await status.set_online_many(conn, [OnlineWrite(account, Platform.KICK, "t", None, 1, now, now)])
        event = StatusEvent(account, Reason.WENT_ONLINE, now, "kick", True)
        await outbox.enqueue_status_events(conn, [event])
    if claim:
        assert await outbox.dispatch(db, 10) == 1
        later = datetime.now(UTC)
        assert len(await repository.claim(db, later, 10, timedelta(seconds=1))) == 1
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main(sys.argv[1], UUID(sys.argv[2]), sys.argv[3] == "claimed"))
"""


SRC = str(Path(__file__).resolve().parents[2] / "src")


async def _run_child(database_url: str, account: UUID, mode: str) -> int:
    env = os.environ | {"PYTHONPATH": SRC}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, database_url, str(account), mode, env=env
    )
    return await child.wait()


@pytest.mark.parametrize("mode", ["committed", "claimed"])
async def test_killed_between_commit_and_send(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: object,
    db: asyncpg.Pool,
    database_url: str,
    mode: str,
) -> None:
    account, owner = await factory.account()
    body = {"url": receiver.url + "/hook", "events": ["went_online"]}
    hook = (await client.post("/v1/webhooks", json=body, headers=owner.bearer)).json()

    assert await _run_child(database_url, account, mode) == -signal.SIGKILL
    assert receiver.received == []
    queued = (
        "SELECT (SELECT count(*) FROM webhook_outbox) + (SELECT count(*) FROM webhook_deliveries)"
    )
    assert await db.fetchval(queued) == 1, "a committed change lost its notification"
    if mode == "claimed":
        # The dead worker's lease (1 s) has to run out first.
        await asyncio.sleep(1.1)

    await drain(loop, db)  # type: ignore[arg-type]  # the restarted worker's loop
    await drain(loop, db)  # type: ignore[arg-type]
    (received,) = receiver.received
    delivery_id = await db.fetchval("SELECT id FROM webhook_deliveries")
    assert received.headers["webhook-id"] == str(delivery_id)
    assert ReferenceVerifier(hook["secret"]).verify(received.body, received.headers)["type"] == (
        "went_online"
    )
