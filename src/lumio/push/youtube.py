"""YouTube over WebSub (PubSubHubbub): the hub's verification, signed Atom notifications, leases.

PLATFORM_APIS.md §2.5: the hub confirms a (un)subscription with a GET carrying ``hub.challenge``;
notifications are Atom entries signed ``X-Hub-Signature: sha1=<hmac>`` with our ``hub.secret``.
There is no live event: a notification only names a video to confirm with ``videos.list``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import httpx

SIGNATURE = "X-Hub-Signature"
TOPIC_BASE = "https://www.youtube.com/xml/feeds/videos.xml"
# The longest lease hubs grant is about 10 days; ask for it and renew a day ahead.
LEASE_SECONDS = 864_000
RENEW_BEFORE_SECONDS = 86_400
_NS = {"atom": "http://www.w3.org/2005/Atom", "yt": "http://www.youtube.com/xml/schemas/2015"}


def topic_for(channel_id: str) -> str:
    return f"{TOPIC_BASE}?channel_id={channel_id}"


def channel_of(topic: str) -> str | None:
    """The channel id of one of our topics, or None for any other URL."""
    parts = urlsplit(topic)
    if f"{parts.scheme}://{parts.netloc}{parts.path}" != TOPIC_BASE:
        return None
    ids = parse_qs(parts.query).get("channel_id", [])
    return ids[0] if len(ids) == 1 and ids[0] else None


def signature_ok(secret: str, body: bytes, given: str) -> bool:
    method, _, digest = given.partition("=")
    if method not in ("sha1", "sha256"):
        return False
    expected = hmac.new(secret.encode(), body, method).hexdigest()
    return hmac.compare_digest(expected.encode(), digest.strip().encode())


def sign(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    channel_id: str
    video_id: str | None


def parse_notification(body: bytes) -> Entry:
    """The channel and video of an Atom notification (no video for a deleted entry)."""
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - signed by the hub with our secret
    except ElementTree.ParseError as exc:
        raise ValueError("not an Atom document") from exc
    entry = root.find("atom:entry", _NS)
    if entry is None:
        channel = _topic_channel(root)
        if channel is None:
            raise ValueError("no entry and no topic")
        return Entry(channel, None)
    channel_id = entry.findtext("yt:channelId", namespaces=_NS)
    video_id = entry.findtext("yt:videoId", namespaces=_NS)
    if not channel_id or not video_id:
        raise ValueError("the entry names no channel or video")
    return Entry(channel_id, video_id)


def _topic_channel(root: ElementTree.Element) -> str | None:
    for link in root.findall("atom:link", _NS):
        if link.get("rel") == "self":
            return channel_of(link.get("href", ""))
    return None


class HubClient:
    def __init__(self, http: httpx.AsyncClient, hub: str) -> None:
        self.http = http
        self.hub = hub

    async def request(self, mode: str, channel_id: str, callback: str, secret: str) -> None:
        """Ask the hub to (un)subscribe; it confirms later with a GET to the callback."""
        form = {
            "hub.mode": mode,
            "hub.callback": callback,
            "hub.topic": topic_for(channel_id),
            "hub.verify": "async",
            "hub.lease_seconds": str(LEASE_SECONDS),
            **({"hub.secret": secret} if mode == "subscribe" else {}),
        }
        response = await self.http.post(self.hub, data=form)
        response.raise_for_status()
