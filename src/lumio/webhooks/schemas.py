"""Webhook endpoints, deliveries and the notices the outbox turns into deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from pydantic import Field

from lumio.kit.views import ApiModel
from lumio.platforms.base import LiveStream


class EventType(StrEnum):
    WENT_ONLINE = "went_online"
    WENT_OFFLINE = "went_offline"
    STREAM_UPDATED = "stream_updated"
    MANUAL_STARTED = "manual_started"
    MANUAL_STOPPED = "manual_stopped"
    NOW_PLAYING_CHANGED = "now_playing_changed"
    TEST = "test"


class Kind(StrEnum):
    STANDARD = "standard"
    DISCORD = "discord"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Webhook(ApiModel):
    id: UUID
    kind: str = Field(description="standard (signed JSON) or discord")
    url: str
    description: str
    events: list[str]
    enabled: bool
    template: str | None = Field(description="Discord message template; null: the default")
    disabled_reason: str | None
    failing_since: datetime | None
    last_delivery_at: datetime | None
    last_status: str | None = Field(description="delivered or failing")
    previous_secret_until: datetime | None = Field(
        description="until then the rotated-away secret signs beside the new one"
    )
    created_at: datetime


class WebhookWithSecret(Webhook):
    secret: str = Field(description="whsec_...: shown once, when created or rotated")


class WebhookDelivery(ApiModel):
    id: UUID = Field(description="the webhook-id header: the same on every retry")
    endpoint_id: UUID
    event_type: str
    state: str = Field(description="pending, delivered or failed")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None
    last_attempt_at: datetime | None
    response_status: int | None
    latency_ms: int | None
    response_body: str | None = Field(description="the first 1 KB of the last answer")
    error: str | None


class WebhookIn(ApiModel):
    url: str = Field(min_length=1, max_length=2000)
    description: str = Field(default="", max_length=500)
    events: list[str] = Field(min_length=1, max_length=10)
    kind: str = "standard"
    template: str | None = Field(default=None, max_length=2000)


class WebhookPatch(ApiModel):
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    events: list[str] | None = Field(default=None, min_length=1, max_length=10)
    enabled: bool | None = None
    template: str | None = Field(default=None, max_length=2000)


@dataclass(frozen=True, slots=True)
class Notice:
    """One change to announce to the account's endpoints that subscribe to ``event_type``."""

    account_id: UUID
    event_type: str
    # Deliveries of one endpoint and channel key go out in order.
    channel_key: str
    body: str


class Queued(NamedTuple):
    """A delivery to make: the columns of webhook_deliveries the dispatcher writes."""

    endpoint_id: UUID
    account_id: UUID
    channel_key: str
    event_type: str
    body: str
    queued_at: datetime


@dataclass(frozen=True, slots=True)
class StreamContext:
    """What the worker knows of a channel beyond the status event: its names and its stream
    (the one that just ended, for went_offline)."""

    channel_id: str
    display_name: str
    stream: LiveStream | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due delivery the loop holds a lease on, with its endpoint."""

    id: UUID
    endpoint_id: UUID
    account_id: UUID
    channel_key: str
    event_type: str
    body: str
    attempts: int
    kind: str
    url: str
    template: str | None
    secrets: tuple[str, ...]
    failing_since: datetime | None


@dataclass(slots=True)
class Outcome:
    """One attempt's result, written back in one batch."""

    delivery_id: UUID
    endpoint_id: UUID
    ok: bool
    at: datetime
    status: int | None = None
    latency_ms: int | None = None
    response_body: str | None = None
    error: str | None = None
    # 410 Gone: the receiver asks us to stop.
    gone: bool = False
    # Discord's 429: when to try again.
    retry_after: float | None = None


def data_of(body: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(body).get("data", {})
    return loaded
