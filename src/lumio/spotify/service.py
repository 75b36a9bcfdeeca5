"""Linking Spotify to the active account (OAuth authorization code), unlinking, and reading
what plays. REST and GraphQL call these; permissions: ``spotify:worker`` to link and unlink,
``spotify:read`` to read.

The OAuth ``state`` is a random value kept (hashed) in Redis for ten minutes together with the
credential (session or API key) and account that started the link; the callback must come with
the same credential, once. So a callback forged into someone else's browser links nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import httpx
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.channel_status.repository import is_any_online
from lumio.kit.errors import BadRequest, Forbidden, NotFound, Unavailable
from lumio.kit.permissions import Permission
from lumio.kit.principal import Principal
from lumio.kit.settings import Settings
from lumio.manual_connect.service import manual_key
from lumio.spotify import now_playing
from lumio.spotify import repository as repo
from lumio.spotify.linking.crypto import cipher_for
from lumio.spotify.linking.oauth import (
    SCOPES,
    InvalidGrant,
    SpotifyAccounts,
    SpotifyApp,
    TokenError,
)
from lumio.spotify.schemas import Authorization, Connection, NewLink, NowPlaying, Play

STATE_PREFIX = "lumio:spotify_oauth:"
STATE_TTL = timedelta(minutes=10)
HISTORY_MAX = 200

_REDIS_DOWN = (
    "Spotify is unavailable because Redis cannot be reached; channel status still works. "
    "Try again shortly."
)


@dataclass(frozen=True, slots=True)
class PendingLink:
    account_id: UUID
    user_id: UUID
    credential_id: UUID
    redirect_uri: str

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "account_id": str(self.account_id),
                "user_id": str(self.user_id),
                "credential_id": str(self.credential_id),
                "redirect_uri": self.redirect_uri,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> PendingLink:
        data = orjson.loads(raw)
        return cls(
            UUID(data["account_id"]),
            UUID(data["user_id"]),
            UUID(data["credential_id"]),
            data["redirect_uri"],
        )


def state_key(state: str) -> str:
    # Only a hash: whoever can read Redis still cannot complete someone's link.
    return STATE_PREFIX + hashlib.sha256(state.encode()).hexdigest()


def spotify_app(settings: Settings) -> SpotifyApp:
    app = SpotifyApp.from_settings(settings)
    if not app.configured:
        raise Unavailable(
            "Spotify is not configured on this server: set LUMIO_SPOTIFY_CLIENT_ID and "
            "LUMIO_SPOTIFY_CLIENT_SECRET"
        )
    return app


async def connection(db: asyncpg.Pool, principal: Principal) -> Connection | None:
    account_id = principal.require(Permission.SPOTIFY_READ)
    return await repo.get_connection(db, account_id)


async def start_link(
    redis: Redis, settings: Settings, principal: Principal, default_redirect_uri: str
) -> Authorization:
    """Where to send the browser so that the user lets Lumio read what they play."""
    account_id = principal.require(Permission.SPOTIFY_WORKER)
    app = spotify_app(settings)
    # Fail before the user goes through Spotify's consent, not after.
    cipher_for(settings)
    redirect_uri = settings.spotify.redirect_uri or default_redirect_uri
    state = secrets.token_urlsafe(32)
    pending = PendingLink(account_id, principal.user_id, principal.credential_id, redirect_uri)
    try:
        await redis.set(state_key(state), pending.to_json(), ex=STATE_TTL)
    except (RedisError, OSError) as exc:
        raise Unavailable(_REDIS_DOWN) from exc
    expires_at = datetime.now(UTC) + STATE_TTL
    return Authorization(
        authorize_url=app.authorize_url(state, redirect_uri), expires_at=expires_at
    )


async def _take_pending(redis: Redis, state: str) -> PendingLink:
    if not state or len(state) > 200:
        raise BadRequest("the callback has no valid state")
    try:
        raw = await redis.getdel(state_key(state))
    except (RedisError, OSError) as exc:
        raise Unavailable(_REDIS_DOWN) from exc
    if raw is None:
        raise BadRequest("this Spotify link request is unknown, used or expired: start again")
    return PendingLink.from_json(raw)


def _check_scope(granted: str) -> None:
    # Either scope reads currently-playing (PLATFORM_APIS.md §5.1).
    if granted and not set(granted.split()) & set(SCOPES):
        raise BadRequest(f"Spotify granted {granted!r}, which cannot read what plays")


async def complete_link(
    db: asyncpg.Pool,
    redis: Redis,
    http: httpx.AsyncClient,
    settings: Settings,
    principal: Principal,
    state: str,
    code: str | None,
    error: str | None = None,
) -> Connection:
    """The OAuth callback: check the state against this credential, trade the code for tokens,
    and store them encrypted. An earlier link of the account is replaced."""
    account_id = principal.require(Permission.SPOTIFY_WORKER)
    pending = await _take_pending(redis, state)
    if (pending.credential_id, pending.account_id) != (principal.credential_id, account_id):
        raise Forbidden("this Spotify link was started by another session or for another account")
    if error:
        raise BadRequest(f"Spotify did not authorise the link: {error[:100]}")
    if not code:
        raise BadRequest("the callback has no authorisation code")
    app = spotify_app(settings)
    cipher = cipher_for(settings)
    client = SpotifyAccounts(http, app)
    now = datetime.now(UTC)
    try:
        grant = await client.exchange_code(code, pending.redirect_uri, now)
        profile = await client.profile(grant.access_token)
    except InvalidGrant as exc:
        raise BadRequest(
            f"Spotify refused the authorisation code ({exc.detail}): start again"
        ) from exc
    except TokenError as exc:
        raise Unavailable(f"Spotify could not complete the link: {exc.detail}") from exc
    if grant.refresh_token is None:
        raise Unavailable("Spotify sent no refresh token with the authorisation: start again")
    _check_scope(grant.scope)
    access, refresh = cipher.encrypt_pair(account_id, grant.access_token, grant.refresh_token)
    new = NewLink(
        account_id=account_id,
        profile=profile,
        scope=grant.scope,
        access_token=access,
        refresh_token=refresh,
        access_expires_at=grant.expires_at,
        linked_by=principal.user_id,
        gate_open=await _gate_now(db, redis, account_id),
        linked_at=now,
    )
    await repo.link(db, new)
    linked = await repo.get_connection(db, account_id)
    assert linked is not None
    return linked


async def _gate_now(db: asyncpg.Pool, redis: Redis, account_id: UUID) -> bool:
    """The gate at link time, so that a live account is polled without waiting for a reconcile."""
    if await is_any_online(db, account_id):
        return True
    try:
        return bool(await redis.exists(manual_key(account_id)))
    except (RedisError, OSError):
        # The workers' next reconcile opens it if manual connect is on.
        return False


async def unlink(db: asyncpg.Pool, redis: Redis, principal: Principal) -> None:
    """Forget the tokens (the history stays); polling stops with them."""
    account_id = principal.require(Permission.SPOTIFY_WORKER)
    if not await repo.unlink(db, account_id):
        raise NotFound("no Spotify account is linked")
    # Without Redis the key expires by itself within its short TTL.
    with contextlib.suppress(RedisError, OSError):
        await now_playing.clear_and_announce(redis, [account_id])


async def current(redis: Redis, principal: Principal) -> NowPlaying | None:
    """What the account's player shows, or None when nothing is known (not polled now)."""
    account_id = principal.require(Permission.SPOTIFY_READ)
    try:
        return await now_playing.load(redis, account_id)
    except (RedisError, OSError) as exc:
        raise Unavailable(_REDIS_DOWN) from exc


async def history(db: asyncpg.Pool, principal: Principal, limit: int) -> list[Play]:
    account_id = principal.require(Permission.SPOTIFY_READ)
    if not 1 <= limit <= HISTORY_MAX:
        raise BadRequest(f"limit must be between 1 and {HISTORY_MAX}")
    return await repo.recent_plays(db, account_id, limit)
