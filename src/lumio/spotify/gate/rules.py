"""The Spotify gate (DESIGN §6): poll an account while it is live somewhere OR manual connect is on.

Pure: which events can move a gate, which account an event or a manual key names, and the open
set from the truth (PostgreSQL's live accounts, Redis's manual keys).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

import orjson

from lumio.events.schemas import Reason
from lumio.manual_connect.service import KEY_PREFIX as MANUAL_PREFIX

MANUAL_PATTERN = MANUAL_PREFIX + "*"

# stream_updated and now_playing_changed cannot open or close a gate; reasons this version does
# not know are ignored (DESIGN §5).
GATE_REASONS = frozenset(
    {Reason.WENT_ONLINE, Reason.WENT_OFFLINE, Reason.MANUAL_STARTED, Reason.MANUAL_STOPPED}
)


def is_open(online: bool, manual: bool) -> bool:
    return online or manual


def gate_event_account(data: bytes | str) -> UUID | None:
    """The account whose gate an event may have moved, or None (another reason, or garbage)."""
    try:
        event = orjson.loads(data)
        if event.get("reason") not in GATE_REASONS:
            return None
        return UUID(str(event["account_id"]))
    except (orjson.JSONDecodeError, AttributeError, KeyError, ValueError):
        return None


def manual_key_account(key: bytes | str) -> UUID | None:
    name = key.decode() if isinstance(key, bytes) else key
    if not name.startswith(MANUAL_PREFIX):
        return None
    try:
        return UUID(name[len(MANUAL_PREFIX) :])
    except ValueError:
        return None


def open_accounts(online: Iterable[UUID], manual_keys: Iterable[bytes | str]) -> frozenset[UUID]:
    manual = {a for a in map(manual_key_account, manual_keys) if a is not None}
    return frozenset(online) | manual


def reconcile_due(last: datetime | None, now: datetime, every: timedelta) -> bool:
    return last is None or now - last >= every
