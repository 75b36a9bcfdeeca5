"""The event message: its channel name and its exact JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

import orjson

CHANNEL_PREFIX = "lumio:channel_status:"
CHANNEL_PATTERN = CHANNEL_PREFIX + "*"


class Reason(StrEnum):
    WENT_ONLINE = "went_online"
    WENT_OFFLINE = "went_offline"
    STREAM_UPDATED = "stream_updated"
    MANUAL_STARTED = "manual_started"
    MANUAL_STOPPED = "manual_stopped"
    NOW_PLAYING_CHANGED = "now_playing_changed"


def channel_for(account_id: UUID) -> str:
    return f"{CHANNEL_PREFIX}{account_id}"


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class StatusEvent:
    account_id: UUID
    reason: Reason
    occurred_at: datetime
    platform: str | None = None
    is_online: bool | None = None
    # Stream history (optional, version 1 still): went_online and went_offline name the
    # session; went_offline also carries the stream's duration.
    session_id: UUID | None = None
    duration_seconds: int | None = None

    @property
    def channel(self) -> str:
        return channel_for(self.account_id)

    def to_json(self) -> bytes:
        message: dict[str, object] = {
            "v": 1,
            "account_id": str(self.account_id),
            "platform": self.platform,
            "reason": self.reason.value,
            "is_online": self.is_online,
            "occurred_at": format_instant(self.occurred_at),
        }
        if self.session_id is not None:
            message["session_id"] = str(self.session_id)
        if self.duration_seconds is not None:
            message["duration_seconds"] = self.duration_seconds
        return orjson.dumps(message)

    @classmethod
    def manual(cls, account_id: UUID, reason: Reason) -> StatusEvent:
        return cls(account_id=account_id, reason=reason, occurred_at=datetime.now(UTC))
