"""The one claim both workers share (platform channels, Spotify connections).

A claim takes due, unleased rows, oldest due first; ``FOR UPDATE SKIP LOCKED`` lets replicas claim
disjoint batches at once. The lease token fences every later write: a worker whose lease ran out
(and whose rows another worker took) cannot store its stale result.
"""

from __future__ import annotations


def claim_sql(table: str, alias: str, keys: tuple[str, ...], where: str, returning: str) -> str:
    """A claim of rows of ``table`` (which has next_poll_at, leased_until and lease_token).

    Parameters: $1 now, $2 batch size, $3 lease seconds, $4 lease token; ``where`` (further
    conditions on the due rows) may use $5 and on. ``returning`` may name the row as ``alias``.
    """
    join = " AND ".join(f"{alias}.{key} = due.{key}" for key in keys)
    return f"""
WITH due AS (
    SELECT {", ".join(keys)} FROM {table}
    WHERE {where} AND next_poll_at <= $1
      AND (leased_until IS NULL OR leased_until < $1)
    ORDER BY next_poll_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE {table} {alias}
SET leased_until = $1 + make_interval(secs => $3), lease_token = $4
FROM due
WHERE {join}
RETURNING {returning}
"""
