"""Spotify for `lumio dev`: the fake Spotify on loopback, settings pointing at it, and the demo
account linked through the real OAuth flow (the fake consents at once).

In ``lumio.dev`` (one process, one event loop), next to the platform fakes::

    spotify = start_dev_spotify()                      # before the settings are built
    settings = settings.updated(spotify.settings_updates(settings))
    await link_demo(pool, redis, http, settings, demo.account_id, demo_user_id)
    tasks.append(asyncio.create_task(build_worker(pool, redis, http, settings).run()))
    ...
    worker.stop(); spotify.stop()

The demo user's queue plays on by itself (a track ends, the next starts); pause, skip or stop it
through ``{url}/_control/users/demo`` (PATCH ``{"action": "pause"}``) to watch now playing change.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import asyncpg
import httpx
from redis.asyncio import Redis

from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.spotify import FakeSpotifyState, create_app
from lumio.kit.permissions import Permission
from lumio.kit.principal import Credential, Principal
from lumio.kit.settings import Settings
from lumio.spotify import service
from lumio.spotify.linking.crypto import with_local_key
from lumio.spotify.schemas import Connection

DEMO_USER = "demo"


@dataclass
class DevSpotify:
    state: FakeSpotifyState
    server: FakeServer

    @property
    def url(self) -> str:
        return self.server.base_url

    def settings_updates(self, settings: Settings) -> dict[str, object]:
        """The app's credentials and base URLs of the fake, and a token key when none is set
        (generated in the data folder; the fake's tokens die with it anyway)."""
        keyed = with_local_key(settings, embedded=True)
        fake = {
            "client_id": self.state.client_id,
            "client_secret": self.state.client_secret,
            "accounts_base": self.url,
            "api_base": self.url,
            "token_key_file": keyed.spotify.token_key_file,
        }
        return {"spotify": fake}

    def stop(self) -> None:
        self.server.stop()


def start_dev_spotify() -> DevSpotify:
    state = FakeSpotifyState()
    state.add_user(DEMO_USER, display_name="Demo Streamer")
    server = FakeServer(create_app(state))
    server.start()
    return DevSpotify(state, server)


async def link_demo(
    db: asyncpg.Pool,
    redis: Redis,
    http: httpx.AsyncClient,
    settings: Settings,
    account_id: UUID,
    user_id: UUID,
) -> Connection:
    """Link the demo account as its owner would: authorize, consent, callback."""
    owner = Principal(
        user_id,
        account_id,
        frozenset({Permission.SPOTIFY_READ.value, Permission.SPOTIFY_WORKER.value}),
        Credential.SESSION,
        uuid4(),
        b"",
    )
    callback = f"http://{settings.api.host}:{settings.api.port}/v1/spotify/callback"
    authorization = await service.start_link(redis, settings, owner, callback)
    consented = await http.get(authorization.authorize_url)
    back = parse_qs(urlsplit(consented.headers["location"]).query)
    code, state = back["code"][0], back["state"][0]
    return await service.complete_link(db, redis, http, settings, owner, state, code)
