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
