"""Data passed between the channels layers and the worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from lumio.kit.views import ApiModel
from lumio.platforms.base import Platform


class LinkedChannel(ApiModel):
    """A linked channel as REST and GraphQL render it (declared once, here)."""

    platform: str
    channel_id: str
    display_name: str
    last_polled_at: datetime | None
    last_error: str | None
    # The last error's stable kind (timeout, http_5xx, ...).
    error_kind: str | None = None
    # Since when the platform has answered only errors (None while it answers).
    error_since: datetime | None = None
    # The platform has answered only errors for longer than three poll intervals.
    stale: bool = False
    is_online: bool = False
    # Push ingestion: none | pending | enabled | failed | revoked, and the last verified message.
    push_status: str = "none"
    push_last_message_at: datetime | None = None


class ChannelPreview(ApiModel):
    """What the platform answers about a channel before it is linked (REST and GraphQL)."""

    platform: str
    channel_id: str
    display_name: str
    avatar_url: str | None


@dataclass(frozen=True, slots=True)
class ClaimedChannel:
    """A channel a worker holds a lease on, with what the detector stored last time."""

    account_id: UUID
    platform: Platform
    channel_id: str
    detector_state: dict[str, Any]
    next_poll_at: datetime
    consecutive_errors: int
    # The login / slug / name the platform shows (webhooks build the channel's URL from it).
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What to store for a polled channel: the detector's new state and the next poll."""

    account_id: UUID
    platform: Platform
    detector_state: dict[str, Any]
    next_poll_at: datetime
    consecutive_errors: int
    last_error: str | None
    polled_at: datetime


@dataclass(frozen=True, slots=True)
class TrackedCount:
    """A platform's linked channels, and those the detector holds live."""

    tracked: int
    live: int
