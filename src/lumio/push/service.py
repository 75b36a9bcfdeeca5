"""Turning a platform's push message into a hint: verify, drop stale and repeated, make due, wake.

A verified message never writes channel_status (DESIGN §3): it makes the channel due now and
wakes the platform's workers; the poll decides through the state machine. The receivers answer
at once (no platform request inside them), so the platforms never time out on us.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.channels import repository as channels_repository
from lumio.kit.clock import Clock, utc_now
from lumio.kit.errors import BadRequest, Forbidden, NotFound, Unavailable
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.push import kick, repository, twitch, youtube
from lumio.push.schemas import WAKE_CHANNEL, Hint, KnownSubscription, OnlineHint, SubscriptionKey

log = logging.getLogger(__name__)

# Replays older than this are refused; ids are remembered a little longer than that.
MAX_AGE = timedelta(minutes=10)
SEEN_SECONDS = 15 * 60
SEEN_KEY = "lumio:push:seen:{platform}:{message_id}"
# Message counts by platform and outcome (verified / rejected / duplicate), shared by replicas.
COUNTS_KEY = "lumio:push:messages"
# After a revocation the platform may allow again at once, or only after the user acts.
RECREATE_SOON = timedelta(seconds=30)
RECREATE_LATER = timedelta(days=1)


def push_platforms(settings: Settings) -> set[Platform]:
    """The platforms whose pushes this installation takes (none without LUMIO_PUBLIC_URL)."""
    if not settings.push.public_url:
        return set()
    platforms = set()
    if settings.twitch.client_id and settings.push.twitch_eventsub_secret:
        platforms.add(Platform.TWITCH)
    if settings.kick.client_id:
        platforms.add(Platform.KICK)
    if settings.youtube.api_key:
        platforms.add(Platform.YOUTUBE)
    return platforms


def callback_url(settings: Settings, platform: Platform) -> str:
    return f"{settings.push.public_url}/webhooks/{platform.value}"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 204
    body: str = ""


@dataclass(slots=True)
class PushContext:
    db: asyncpg.Pool
    redis: Redis
    settings: Settings
    http: httpx.AsyncClient
    kick_keys: kick.PublicKeyCache
    clock: Clock = field(default=utc_now)


# --- shared steps ---


def _required(headers: Mapping[str, str], *names: str) -> list[str]:
    values = [headers.get(name, "") for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise BadRequest(f"missing header(s): {', '.join(missing)}")
    return values


def _fresh(sent_at: datetime, now: datetime) -> None:
    if now - sent_at > MAX_AGE or sent_at - now > MAX_AGE:
        raise Forbidden("the message timestamp is more than 10 minutes away from now")


async def _count(ctx: PushContext, platform: Platform, outcome: str) -> None:
    with contextlib.suppress(RedisError, OSError):
        await ctx.redis.hincrby(COUNTS_KEY, f"{platform.value}:{outcome}", 1)


async def _reject(ctx: PushContext, platform: Platform, error: Exception) -> Exception:
    await _count(ctx, platform, "rejected")
    return error


async def _first_time(ctx: PushContext, platform: Platform, message_id: str) -> bool:
    """Remember the id for every API replica; False when it was seen already."""
    key = SEEN_KEY.format(platform=platform.value, message_id=message_id)
    try:
        return bool(await ctx.redis.set(key, b"1", nx=True, ex=SEEN_SECONDS))
    except (RedisError, OSError) as exc:
        # A hint applied twice costs one poll; refusing the message would lose it.
        log.warning("push dedupe unavailable, taking the message: %s", exc)
        return True


async def apply_hint(ctx: PushContext, hint: Hint) -> None:
    """Make the channel due now (all accounts linking it), then wake that platform's workers."""
    now = ctx.clock()
    # Due as if already batch_wait late: the claim sends it at once instead of holding it back
    # for a fuller batch. Two independent writes: a lost hint record costs only the arming.
    due = now - ctx.settings.detection.poll_batch_wait
    await asyncio.gather(
        channels_repository.make_due(ctx.db, hint.platform, hint.channel_id, due),
        repository.record_hint(ctx.db, hint, now),
    )
    try:
        async with ctx.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(COUNTS_KEY, f"{hint.platform.value}:verified", 1)
            pipe.publish(WAKE_CHANNEL.format(platform=hint.platform.value), hint.channel_id)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        # The workers still find the channel due at their next claim (within a second or so).
        log.warning("could not wake the %s workers: %s", hint.platform, exc)


def _ours(known: KnownSubscription | None, subscription_id: str | None) -> bool:
    if known is None:
        return False
    return subscription_id is None or known.external_id in (None, subscription_id)


def _requested(known: KnownSubscription | None, subscription_id: str) -> bool:
    """A verification of a subscription we asked for: none enabled yet, or this very one."""
    if known is None:
        return False
    return known.status != "enabled" or known.external_id in (None, subscription_id)


# --- Twitch EventSub ---


async def receive_twitch(ctx: PushContext, headers: Mapping[str, str], body: bytes) -> Reply:
    if Platform.TWITCH not in push_platforms(ctx.settings):
        raise NotFound("Twitch push is not configured")
    message_id, timestamp, signature, kind = _required(
        headers,
        twitch.MESSAGE_ID,
        twitch.MESSAGE_TIMESTAMP,
        twitch.MESSAGE_SIGNATURE,
        twitch.MESSAGE_TYPE,
    )
    secret = ctx.settings.push.twitch_eventsub_secret
    if not twitch.signature_ok(secret, message_id, timestamp, body, signature):
        raise await _reject(ctx, Platform.TWITCH, Forbidden("the signature does not match"))
    try:
        _fresh(twitch.parse_timestamp(timestamp), ctx.clock())
        message = twitch.parse_message(body)
    except twitch.MalformedMessage as exc:
        raise await _reject(ctx, Platform.TWITCH, BadRequest(str(exc))) from exc
    except Forbidden as exc:
        raise await _reject(ctx, Platform.TWITCH, exc) from exc
    key = SubscriptionKey(Platform.TWITCH, message.broadcaster_id, message.subscription_type)
    known = await repository.find(ctx.db, key)
    if kind == "webhook_callback_verification":
        return await _twitch_challenge(ctx, key, known, message)
    if known is None or known.external_id != message.subscription_id:
        raise await _reject(ctx, Platform.TWITCH, NotFound("unknown subscription"))
    if not await _first_time(ctx, Platform.TWITCH, message_id):
        await _count(ctx, Platform.TWITCH, "duplicate")
    elif kind == "revocation":
        await _twitch_revoked(ctx, message)
    elif kind == "notification":
        await apply_hint(ctx, Hint(Platform.TWITCH, key.channel_id, twitch.online_hint(message)))
    return Reply()


async def _twitch_challenge(
    ctx: PushContext, key: SubscriptionKey, known: KnownSubscription | None, message: twitch.Message
) -> Reply:
    # Only subscriptions this installation asked for (a row exists for the channel and type).
    if not _requested(known, message.subscription_id) or not isinstance(message.challenge, str):
        raise await _reject(ctx, Platform.TWITCH, NotFound("no such subscription was requested"))
    await repository.enable(ctx.db, key, message.subscription_id, None)
    return Reply(200, message.challenge)


async def _twitch_revoked(ctx: PushContext, message: twitch.Message) -> None:
    reason = message.subscription_status or "revoked"
    wait = RECREATE_SOON if reason in twitch.RECOVERABLE else RECREATE_LATER
    await repository.revoke(
        ctx.db, Platform.TWITCH, message.subscription_id, reason, ctx.clock() + wait
    )
    await _count(ctx, Platform.TWITCH, "revoked")


# --- Kick ---


async def receive_kick(ctx: PushContext, headers: Mapping[str, str], body: bytes) -> Reply:
    if Platform.KICK not in push_platforms(ctx.settings):
        raise NotFound("Kick push is not configured")
    message_id, timestamp, signature, topic = _required(
        headers, kick.MESSAGE_ID, kick.MESSAGE_TIMESTAMP, kick.SIGNATURE, kick.EVENT_TYPE
    )
    if not await _kick_signature_ok(ctx, message_id, timestamp, body, signature):
        raise await _reject(ctx, Platform.KICK, Forbidden("the signature does not match"))
    try:
        _fresh(twitch.parse_timestamp(timestamp), ctx.clock())
        message = kick.parse_message(body)
    except twitch.MalformedMessage as exc:
        raise await _reject(ctx, Platform.KICK, BadRequest(str(exc))) from exc
    except Forbidden as exc:
        raise await _reject(ctx, Platform.KICK, exc) from exc
    key = SubscriptionKey(Platform.KICK, message.broadcaster_id, topic)
    known = await repository.find(ctx.db, key)
    if not _ours(known, headers.get(kick.SUBSCRIPTION_ID) or None):
        raise await _reject(ctx, Platform.KICK, NotFound("unknown subscription"))
    if not await _first_time(ctx, Platform.KICK, message_id):
        await _count(ctx, Platform.KICK, "duplicate")
        return Reply()
    await apply_hint(ctx, Hint(Platform.KICK, key.channel_id))
    return Reply()


async def _kick_signature_ok(
    ctx: PushContext, message_id: str, timestamp: str, body: bytes, signature: str
) -> bool:
    """Verify with the key in hand; when it fails, with a newer one (Kick may rotate its key;
    the cache bounds how often it asks Kick, since a forgery fails the same way)."""
    base, now = ctx.settings.kick.api_base, ctx.clock()
    try:
        key = await ctx.kick_keys.get(ctx.http, base, now)
        if kick.verify(key, message_id, timestamp, body, signature):
            return True
        fresh = await ctx.kick_keys.newer_than(key, ctx.http, base, now)
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise Unavailable("Kick's public key could not be fetched") from exc
    return fresh is not None and kick.verify(fresh, message_id, timestamp, body, signature)


# --- YouTube WebSub ---


async def verify_youtube_intent(ctx: PushContext, params: Mapping[str, str]) -> Reply:
    """The hub's GET: echo the challenge only for a topic this installation asked for."""
    if Platform.YOUTUBE not in push_platforms(ctx.settings):
        raise NotFound("YouTube push is not configured")
    mode, topic, challenge = _required(params, "hub.mode", "hub.topic", "hub.challenge")
    channel_id = youtube.channel_of(topic)
    if channel_id is None:
        raise NotFound("not a topic of this installation")
    key = SubscriptionKey(Platform.YOUTUBE, channel_id, "feed")
    if mode == "subscribe" and await repository.find(ctx.db, key) is not None:
        lease = _lease_seconds(params.get("hub.lease_seconds"))
        await repository.enable(ctx.db, key, topic, ctx.clock() + timedelta(seconds=lease))
        return Reply(200, challenge)
    if mode == "unsubscribe" and not await channels_repository.is_linked(
        ctx.db, Platform.YOUTUBE, channel_id
    ):
        return Reply(200, challenge)
    raise NotFound("no such subscription was requested")


def _lease_seconds(value: str | None) -> int:
    if value is None or not value.isdigit():
        return youtube.LEASE_SECONDS
    return int(value)


async def receive_youtube(ctx: PushContext, headers: Mapping[str, str], body: bytes) -> Reply:
    if Platform.YOUTUBE not in push_platforms(ctx.settings):
        raise NotFound("YouTube push is not configured")
    (signature,) = _required(headers, youtube.SIGNATURE)
    secret = await repository.installation_secret(ctx.db, Platform.YOUTUBE)
    if not youtube.signature_ok(secret, body, signature):
        raise await _reject(ctx, Platform.YOUTUBE, Forbidden("the signature does not match"))
    try:
        entry = youtube.parse_notification(body)
    except ValueError as exc:
        raise await _reject(ctx, Platform.YOUTUBE, BadRequest(str(exc))) from exc
    key = SubscriptionKey(Platform.YOUTUBE, entry.channel_id, "feed")
    if await repository.find(ctx.db, key) is None:
        raise await _reject(ctx, Platform.YOUTUBE, NotFound("unknown subscription"))
    # WebSub carries no message id: the signed body is the message.
    if not await _first_time(ctx, Platform.YOUTUBE, hashlib.sha256(body).hexdigest()):
        await _count(ctx, Platform.YOUTUBE, "duplicate")
        return Reply()
    # No live event on YouTube: the video becomes a candidate that videos.list confirms.
    online = None if entry.video_id is None else OnlineHint(entry.video_id, ctx.clock())
    await apply_hint(ctx, Hint(Platform.YOUTUBE, entry.channel_id, online))
    return Reply()
