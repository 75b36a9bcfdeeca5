"""Twitch EventSub over the webhook transport: verifying a message, and the subscriptions API.

PLATFORM_APIS.md §1.4: the signature is ``sha256=`` HMAC-SHA256(secret, id + timestamp + raw body),
messages are delivered at least once with the same id, and the first message of a subscription is
a ``webhook_callback_verification`` whose challenge is echoed as text/plain.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson

from lumio.push.schemas import TOPIC_VERSIONS, OnlineHint

MESSAGE_ID = "Twitch-Eventsub-Message-Id"
MESSAGE_TIMESTAMP = "Twitch-Eventsub-Message-Timestamp"
MESSAGE_SIGNATURE = "Twitch-Eventsub-Message-Signature"
MESSAGE_TYPE = "Twitch-Eventsub-Message-Type"
SUBSCRIPTIONS_PATH = "/helix/eventsub/subscriptions"
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})")
# Revocations after which a new subscription can work; the others need the user or Twitch first.
RECOVERABLE = frozenset({"notification_failures_exceeded", "webhook_callback_verification_failed"})


# Client-Id and a valid app token (the Twitch adapter owns the token).
HeaderSource = Callable[[], Awaitable[dict[str, str]]]


class MalformedMessage(ValueError):
    """A body or header that is not what EventSub sends."""


def signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), message_id.encode() + timestamp.encode() + body, "sha256")
    return "sha256=" + digest.hexdigest()


def signature_ok(secret: str, message_id: str, timestamp: str, body: bytes, given: str) -> bool:
    expected = signature(secret, message_id, timestamp, body)
    return hmac.compare_digest(expected.encode(), given.encode())


def parse_timestamp(value: str) -> datetime:
    """RFC 3339 with up to nanoseconds; Python keeps microseconds."""
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        raise MalformedMessage(f"bad timestamp {value!r}")
    head, fraction, zone = match.groups()
    text = head + (f".{fraction[:6]}" if fraction else "") + ("+00:00" if zone in "Zz" else zone)
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedMessage(f"bad timestamp {value!r}") from exc


@dataclass(frozen=True, slots=True)
class Message:
    subscription_id: str
    subscription_type: str
    subscription_status: str
    broadcaster_id: str
    challenge: str | None
    event: dict[str, Any]


def parse_message(body: bytes) -> Message:
    try:
        data = orjson.loads(body)
        subscription = data["subscription"]
        condition = subscription["condition"]
        return Message(
            subscription_id=str(subscription["id"]),
            subscription_type=str(subscription["type"]),
            subscription_status=str(subscription.get("status", "")),
            broadcaster_id=str(condition["broadcaster_user_id"]),
            challenge=data.get("challenge"),
            event=data.get("event") or {},
        )
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise MalformedMessage("not an EventSub message") from exc


def online_hint(message: Message) -> OnlineHint | None:
    """A ``stream.online`` of a live stream (not a rerun or premiere) announces a stream id."""
    event = message.event
    if message.subscription_type != "stream.online" or event.get("type", "live") != "live":
        return None
    try:
        return OnlineHint(str(event["id"]), parse_timestamp(str(event["started_at"])))
    except (KeyError, MalformedMessage):
        return None


class EventSubClient:
    """``/helix/eventsub/subscriptions`` with the app token of the Twitch adapter."""

    def __init__(self, http: httpx.AsyncClient, api_base: str, headers: HeaderSource) -> None:
        self.http = http
        self.url = api_base.rstrip("/") + SUBSCRIPTIONS_PATH
        self.headers = headers

    async def create(self, topic: str, broadcaster_id: str, callback: str, secret: str) -> str:
        """Create a subscription; returns its id (its status is pending until the challenge)."""
        body = {
            "type": topic,
            "version": TOPIC_VERSIONS[topic],
            "condition": {"broadcaster_user_id": broadcaster_id},
            "transport": {"method": "webhook", "callback": callback, "secret": secret},
        }
        response = await self.http.post(self.url, json=body, headers=await self.headers())
        if response.status_code == 409:
            raise SubscriptionConflict("a subscription of this type and condition exists")
        response.raise_for_status()
        return str(response.json()["data"][0]["id"])

    async def delete(self, subscription_id: str) -> None:
        response = await self.http.delete(
            self.url, params={"id": subscription_id}, headers=await self.headers()
        )
        if response.status_code != 404:
            response.raise_for_status()

    async def list_all(self) -> list[dict[str, Any]]:
        """Every subscription of the app, page by page."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"first": "100", **({"after": cursor} if cursor else {})}
            response = await self.http.get(self.url, params=params, headers=await self.headers())
            response.raise_for_status()
            page = response.json()
            found.extend(page["data"])
            cursor = (page.get("pagination") or {}).get("cursor")
            if not cursor or not page["data"]:
                return found


class SubscriptionConflict(Exception):
    """Twitch already has this subscription (another create raced, or a stored id was lost)."""
