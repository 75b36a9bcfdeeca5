"""The budget of one platform as operators see it."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from lumio.kit.views import ApiModel


class PlatformBudget(ApiModel):
    """One platform's shared budget (every worker replica spends it) and the channels it serves."""

    platform: str
    channels_tracked: int = Field(description="linked channels the workers poll")
    channels_live: int = Field(description="of them, live now (the detector's phase)")
    rate_limit: int | None = Field(description="the platform's rate-limit window, as it said last")
    rate_limit_remaining: int | None = Field(description="requests left in that window")
    rate_limit_resets_at: datetime | None
    blocked_until: datetime | None = Field(description="every replica waits until then (429)")
    daily_quota: int | None = Field(description="YouTube: LUMIO_YOUTUBE_DAILY_QUOTA units")
    used_today: int | None = Field(description="YouTube: units spent since midnight Pacific")
    remaining: int | None = Field(description="YouTube: units left today")
    resets_at: datetime | None = Field(description="YouTube: the next midnight Pacific")
    live_reconfirm_interval_seconds: float | None = Field(
        description="YouTube: how often a live channel is re-confirmed so the quota lasts the day"
    )
