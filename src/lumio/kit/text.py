"""Text that PostgreSQL can store: no NUL character and valid Unicode (no lone surrogates).

PostgreSQL refuses both in ``text`` (and asyncpg cannot even encode a lone surrogate), so input
holding them is refused at validation with a 400 instead of failing in the database with a 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

NOT_STORABLE = "text must not contain NUL characters or invalid Unicode"


def storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def all_storable(value: object) -> bool:
    """Every string in ``value`` (nested in mappings and sequences, keys too) is storable."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, Mapping):
        return all(all_storable(k) and all_storable(v) for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return all(all_storable(item) for item in value)
    return True
