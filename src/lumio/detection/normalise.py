"""Platform values made storable before they reach PostgreSQL (DESIGN §9: bad data is isolated).

A platform answer is untrusted data. PostgreSQL's TEXT and JSONB refuse NUL (``\\u0000``) and
lone surrogates, INT refuses values beyond 32 bits, and one such value used to fail the whole
batch's transaction, again at every retry. So every string is stripped of what PostgreSQL
refuses and clipped, every count is clamped to its column (a count outside it is not a count:
null, logged), and every time outside ±1 day of now (Kick's ``0001-01-01`` "unset", a year-9999
typo) is null. Pure functions, the clock passed in.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from lumio.kit.storable import MAX_ERROR_CHARS, clamp_count, clean_text, plausible_time
from lumio.platforms.base import LiveStream, Observation

MAX_TITLE_CHARS = 1000
MAX_CATEGORY_CHARS = 200
MAX_STREAM_ID_CHARS = 200


def normalise_stream(stream: LiveStream, now: datetime) -> LiveStream:
    return replace(
        stream,
        title=clean_text(stream.title, MAX_TITLE_CHARS),
        category=clean_text(stream.category, MAX_CATEGORY_CHARS),
        viewers=clamp_count(stream.viewers, "viewer count"),
        started_at=plausible_time(stream.started_at, now),
        stream_id=clean_text(stream.stream_id, MAX_STREAM_ID_CHARS) or "?",
    )


def normalise(observation: Observation, now: datetime) -> Observation:
    """The observation with every value storable (see the module docstring)."""
    stream = observation.stream
    if stream is None and observation.error_kind is None and observation.error is None:
        # Offline, most observations: nothing to clean, and a copy costs a dataclass replace.
        return observation
    return replace(
        observation,
        stream=None if stream is None else normalise_stream(stream, now),
        error_kind=clean_text(observation.error_kind, 64),
        error=clean_text(observation.error, MAX_ERROR_CHARS),
    )
