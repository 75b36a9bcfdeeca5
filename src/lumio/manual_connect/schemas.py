"""Data passed between the manual_connect layers."""

from __future__ import annotations

from lumio.kit.views import ApiModel


class SpotifyManualStatus(ApiModel):
    """The manual connect as REST and GraphQL render it (declared once, here)."""

    active: bool
    remaining_seconds: int | None

    @classmethod
    def from_ttl(cls, ttl: int) -> SpotifyManualStatus:
        # TTL answers -2 for a missing key; -1 (no expiry) cannot happen for keys we set.
        if ttl < 0:
            return cls(active=False, remaining_seconds=None)
        return cls(active=True, remaining_seconds=ttl)
