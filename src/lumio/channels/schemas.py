"""Data passed between the channels layers and the worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from lumio.platforms.base import Platform


@dataclass(frozen=True, slots=True)
class LinkedChannel:
    account_id: UUID
    platform: Platform
    channel_id: str
    display_name: str
    last_polled_at: datetime | None
    last_error: str | None
    # Push ingestion: none | pending | enabled | failed | revoked, and the last verified message.
    push_status: str = "none"
    push_last_message_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClaimedChannel:
    """A channel a worker holds a lease on, with what the detector stored last time."""

    account_id: UUID
    platform: Platform
    channel_id: str
    detector_state: dict[str, Any]
    next_poll_at: datetime
    consecutive_errors: int


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
