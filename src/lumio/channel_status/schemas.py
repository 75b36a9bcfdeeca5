"""Data passed between the channel_status layers."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from lumio.kit.views import ApiModel
from lumio.platforms.base import Platform


class ChannelStatus(ApiModel):
    """A platform's live status, as REST and GraphQL render it (declared once, here)."""

    platform: str
    is_online: bool
    stream_title: str | None
    category: str | None
    viewer_count: int | None
    started_at: datetime | None
    updated_at: datetime


class StatusRow(asyncpg.Record):
    """A ``channel_status`` row as the API reads it: its columns are ChannelStatus's fields, in
    order (tests/channel_status/test_repository.py), so REST renders it with the view's names
    and GraphQL reads its fields as attributes, without building a model per row (~40 µs of a
    ~600 µs request, issue 15)."""

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


# Each field an attribute by position: a C-level property (a ``__getattr__`` fallback cost more
# than the models it replaced: ~12 µs a row).
for _position, _field in enumerate(ChannelStatus.model_fields):
    setattr(StatusRow, _field, property(operator.itemgetter(_position)))


@dataclass(frozen=True, slots=True)
class OnlineWrite:
    """``set_online``: the channel is live with these details, as observed at ``observed_at``."""

    account_id: UUID
    platform: Platform
    stream_title: str | None
    category: str | None
    viewer_count: int | None
    started_at: datetime | None
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class OfflineWrite:
    """``set_offline``: the channel is not live, as observed at ``observed_at``."""

    account_id: UUID
    platform: Platform
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class StreamDataWrite:
    """``update_stream_data``: new details of a stream that is already online."""

    account_id: UUID
    platform: Platform
    stream_title: str | None
    category: str | None
    viewer_count: int | None
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class Applied:
    """A row a writer actually changed; ``changed`` says whether anything visible differs."""

    account_id: UUID
    platform: Platform
    changed: bool


@dataclass(frozen=True, slots=True)
class OnlineAccount:
    account_id: UUID
    platforms: tuple[str, ...]
