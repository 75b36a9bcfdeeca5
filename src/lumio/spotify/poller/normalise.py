"""A Spotify answer made storable before it reaches PostgreSQL (issue 9, as for the platforms)."""

from __future__ import annotations

from dataclasses import replace

from lumio.kit.storable import clamp_count, clean_text
from lumio.spotify.schemas import Item, NowPlaying

MAX_NAME_CHARS = 1000
MAX_URL_CHARS = 2000
MAX_ID_CHARS = 200


def storable_item(item: Item) -> Item:
    return replace(
        item,
        item_id=clean_text(item.item_id, MAX_ID_CHARS),
        title=clean_text(item.title, MAX_NAME_CHARS) or "",
        artists=tuple(a for a in (clean_text(a, MAX_NAME_CHARS) for a in item.artists) if a),
        album=clean_text(item.album, MAX_NAME_CHARS),
        art_url=clean_text(item.art_url, MAX_URL_CHARS),
        url=clean_text(item.url, MAX_URL_CHARS),
        duration_ms=clamp_count(item.duration_ms, "duration"),
    )


def storable(seen: NowPlaying) -> NowPlaying:
    """``seen`` with every text and number in a form PostgreSQL stores."""
    return replace(
        seen,
        progress_ms=clamp_count(seen.progress_ms, "progress"),
        item=None if seen.item is None else storable_item(seen.item),
    )
