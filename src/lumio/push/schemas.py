"""Data passed between the push layers, the worker and the channel listings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lumio.platforms.base import Platform


class PushStatus(StrEnum):
    """A channel's push health, as listings show it (``none``: push is off for it)."""

    NONE = "none"
    PENDING = "pending"
    ENABLED = "enabled"
    FAILED = "failed"
    REVOKED = "revoked"


# The topics subscribed per linked channel; the YouTube topic is the channel's feed.
TOPICS: dict[Platform, tuple[str, ...]] = {
    Platform.TWITCH: ("stream.online", "stream.offline", "channel.update"),
    Platform.KICK: ("livestream.status.updated", "livestream.metadata.updated"),
    Platform.YOUTUBE: ("feed",),
}
# Where the API tells the workers of a platform that a channel became due (DESIGN §3).
WAKE_CHANNEL = "lumio:worker:wake:{platform}"
TOPIC_VERSIONS = {"stream.online": "1", "stream.offline": "1", "channel.update": "2"}


@dataclass(frozen=True, slots=True)
class SubscriptionKey:
    platform: Platform
    channel_id: str
    topic: str


@dataclass(frozen=True, slots=True)
class SubscriptionWork:
    """A subscription claimed by the reconciler: create, renew, recreate or delete it."""

    key: SubscriptionKey
    status: str
    external_id: str | None
    attempts: int
    # False when no account links the channel any more: delete it at the platform.
    linked: bool


@dataclass(frozen=True, slots=True)
class SubscriptionResult:
    """What the reconciler stores after talking to the platform."""

    key: SubscriptionKey
    status: str
    external_id: str | None
    reason: str | None
    attempts: int
    next_attempt_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class KnownSubscription:
    status: str
    external_id: str | None


@dataclass(frozen=True, slots=True)
class OnlineHint:
    """A Twitch ``stream.online``: the stream it announced, for arming the second sighting."""

    stream_id: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Hint:
    """A verified push message: poll this channel now."""

    platform: Platform
    channel_id: str
    online: OnlineHint | None = None


@dataclass(frozen=True, slots=True)
class PushFacts:
    """What the worker's scheduling reads of one polled channel."""

    channel_id: str
    enabled: bool
    hinted_at: datetime | None
    online: OnlineHint | None
    online_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChannelPush:
    status: PushStatus
    last_message_at: datetime | None
