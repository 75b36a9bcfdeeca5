"""Kick webhooks: RSA-SHA256 signatures with Kick's public key, and the subscriptions API.

PLATFORM_APIS.md §3.5: Kick signs ``"{message_id}.{timestamp}.{raw_body}"`` with RSA PKCS#1 v1.5
and SHA-256 (base64 in ``Kick-Event-Signature``); its public key is served at
``/public/v1/public-key``. The webhook URL itself is set once in the app's Kick settings.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from lumio.push.twitch import HeaderSource, MalformedMessage

MESSAGE_ID = "Kick-Event-Message-Id"
MESSAGE_TIMESTAMP = "Kick-Event-Message-Timestamp"
SIGNATURE = "Kick-Event-Signature"
EVENT_TYPE = "Kick-Event-Type"
SUBSCRIPTION_ID = "Kick-Event-Subscription-Id"
PUBLIC_KEY_PATH = "/public/v1/public-key"
SUBSCRIPTIONS_PATH = "/public/v1/events/subscriptions"
# After a failed signature, Kick's key is fetched again at most this often (see PublicKeyCache).
REFRESH_EVERY = timedelta(minutes=1)


def signed_bytes(message_id: str, timestamp: str, body: bytes) -> bytes:
    return f"{message_id}.{timestamp}.".encode() + body


def verify(key: rsa.RSAPublicKey, message_id: str, timestamp: str, body: bytes, given: str) -> bool:
    try:
        signature = base64.b64decode(given, validate=True)
        key.verify(
            signature,
            signed_bytes(message_id, timestamp, body),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def load_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("Kick's public key is not an RSA key")
    return key


class PublicKeyCache:
    """Kick's public key, fetched on the first message and again when a signature fails with
    it (Kick may have rotated it), but at most once per ``refresh_every``: a forged signature
    fails too, and forgeries must not turn every request into a request to Kick."""

    def __init__(self, refresh_every: timedelta = REFRESH_EVERY) -> None:
        self.refresh_every = refresh_every
        self._key: rsa.RSAPublicKey | None = None
        self._fetched_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def get(self, http: httpx.AsyncClient, api_base: str, now: datetime) -> rsa.RSAPublicKey:
        """The key in hand, fetched when there is none yet."""
        async with self._lock:
            if self._key is None:
                return await self._fetch(http, api_base, now)
            return self._key

    async def newer_than(
        self, tried: rsa.RSAPublicKey, http: httpx.AsyncClient, api_base: str, now: datetime
    ) -> rsa.RSAPublicKey | None:
        """A key to try after ``tried`` failed: one another message fetched meanwhile, or Kick's
        current one; None when the last fetch is too recent to ask Kick again."""
        async with self._lock:
            if self._key is not None and self._key is not tried:
                return self._key
            if self._fetched_at is not None and (
                timedelta(0) <= now - self._fetched_at < self.refresh_every
            ):
                return None
            return await self._fetch(http, api_base, now)

    async def _fetch(
        self, http: httpx.AsyncClient, api_base: str, now: datetime
    ) -> rsa.RSAPublicKey:
        # The attempt counts even when it fails: a failing Kick is not asked on every message.
        self._fetched_at = now
        response = await http.get(api_base.rstrip("/") + PUBLIC_KEY_PATH)
        response.raise_for_status()
        self._key = load_key(response.json()["data"]["public_key"])
        return self._key


@dataclass(frozen=True, slots=True)
class Message:
    broadcaster_id: str
    is_live: bool | None


def parse_message(body: bytes) -> Message:
    try:
        data = orjson.loads(body)
        live = data.get("is_live")
        return Message(
            str(data["broadcaster"]["user_id"]), live if isinstance(live, bool) else None
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedMessage("not a Kick event") from exc


class KickEventsClient:
    def __init__(self, http: httpx.AsyncClient, api_base: str, headers: HeaderSource) -> None:
        self.http = http
        self.url = api_base.rstrip("/") + SUBSCRIPTIONS_PATH
        self.headers = headers

    async def create(self, topic: str, broadcaster_id: str) -> str:
        body = {
            "broadcaster_user_id": int(broadcaster_id),
            "events": [{"name": topic, "version": 1}],
            "method": "webhook",
        }
        response = await self.http.post(self.url, json=body, headers=await self.headers())
        response.raise_for_status()
        created = response.json()["data"][0]
        if created.get("error") or not created.get("subscription_id"):
            raise httpx.HTTPError(f"Kick refused the subscription: {created.get('error')}")
        return str(created["subscription_id"])

    async def delete(self, subscription_id: str) -> None:
        response = await self.http.delete(
            self.url, params={"id": subscription_id}, headers=await self.headers()
        )
        if response.status_code != 404:
            response.raise_for_status()

    async def list_all(self) -> list[dict[str, Any]]:
        response = await self.http.get(self.url, headers=await self.headers())
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()["data"]
        return data
