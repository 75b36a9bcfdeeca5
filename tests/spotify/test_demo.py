"""`lumio dev`'s Spotify: the fake on loopback and the demo account linked through OAuth."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
from redis.asyncio import Redis

from lumio.dev.demo import DEMO_USER, link_demo, start_dev_spotify
from lumio.kit.settings import Settings
from lumio.spotify import repository
from tests.conftest import Factory


async def test_the_demo_account_is_linked_to_the_dev_fake(
    settings: Settings, db: asyncpg.Pool, redis: Redis, factory: Factory, tmp_path: Path
) -> None:
    account_id, owner = await factory.account()
    spotify = start_dev_spotify()
    try:
        base = settings.updated({"data_dir": tmp_path})
        dev = base.updated(spotify.settings_updates(base))
        async with httpx.AsyncClient() as http:
            linked = await link_demo(db, redis, http, dev, account_id, owner.user_id)
    finally:
        spotify.stop()
    assert (linked.spotify_user_id, linked.display_name) == (DEMO_USER, "Demo Streamer")
    assert await repository.get_connection(db, account_id) == linked
