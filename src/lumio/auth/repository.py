"""All SQL of sessions and API keys, including the principal look-ups."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from lumio.db.pool import Executor
from lumio.kit.principal import Credential, Principal

# The key's permissions are its user's role in the key's account *now*: a key stops working
# when its user leaves the account, and follows role changes. One round trip also records the
# use (last_used_at, written at most once a minute per key).
_API_KEY_PRINCIPALS = """
WITH k AS (
    SELECT k.key_hash, k.id, k.user_id, k.account_id, r.permissions, k.last_used_at
    FROM api_keys k
    JOIN account_members m ON m.user_id = k.user_id AND m.account_id = k.account_id
    JOIN roles r ON r.id = m.role_id
    WHERE k.key_hash {match} AND k.revoked_at IS NULL
), touched AS (
    UPDATE api_keys SET last_used_at = now()
    FROM k
    WHERE api_keys.id = k.id
      AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
)
SELECT key_hash, id, user_id, account_id, permissions FROM k
"""

_SESSION_PRINCIPALS = """
SELECT s.token_hash, s.id, s.user_id, m.account_id,
    COALESCE(r.permissions, '{{}}') AS permissions
FROM sessions s
LEFT JOIN account_members m ON m.user_id = s.user_id AND m.account_id = s.active_account_id
LEFT JOIN roles r ON r.id = m.role_id
WHERE s.token_hash {match} AND s.expires_at > now()
"""

PRINCIPAL_BY_API_KEY = _API_KEY_PRINCIPALS.format(match="= $1")
PRINCIPAL_BY_SESSION = _SESSION_PRINCIPALS.format(match="= $1")
# The same two look-ups for many credentials at once: the background refresh of the cache.
PRINCIPALS_BY_API_KEYS = _API_KEY_PRINCIPALS.format(match="= ANY($1::bytea[])")
PRINCIPALS_BY_SESSIONS = _SESSION_PRINCIPALS.format(match="= ANY($1::bytea[])")

INSERT_SESSION = """
INSERT INTO sessions (token_hash, user_id, active_account_id, expires_at)
VALUES ($1, $2, $3, $4) RETURNING id
"""
DELETE_SESSION = "DELETE FROM sessions WHERE id = $1"
# At most $2 rows per statement: a sweep after a long outage never holds a long transaction.
DELETE_EXPIRED_SESSIONS = """
DELETE FROM sessions WHERE id IN (
    SELECT id FROM sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
)
"""
SET_ACTIVE_ACCOUNT = "UPDATE sessions SET active_account_id = $2 WHERE id = $1"

INSERT_API_KEY = """
INSERT INTO api_keys (key_hash, prefix, name, user_id, account_id)
VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at
"""
# Keyset pages in (created_at, id) order; $3 is the last id of the previous page (or NULL).
LIST_API_KEYS = """
SELECT id, prefix, name, created_at, revoked_at, last_used_at FROM api_keys
WHERE user_id = $1 AND account_id = $2
  AND ($3::uuid IS NULL OR (created_at, id) > (
      SELECT created_at, id FROM api_keys WHERE id = $3 AND user_id = $1))
ORDER BY created_at, id
LIMIT $4
"""
GET_API_KEY = """
SELECT id, prefix, name, created_at, revoked_at, last_used_at FROM api_keys WHERE id = $1
"""
# Serialises the key creations of one user, so that the cap holds under concurrent requests.
LOCK_USER = "SELECT id FROM users WHERE id = $1 FOR UPDATE"
COUNT_LIVE_API_KEYS = "SELECT count(*) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL"
# Every credential whose principal names this member: sessions on the account, live keys.
MEMBER_CREDENTIAL_HASHES = """
SELECT token_hash FROM sessions WHERE user_id = $1 AND active_account_id = $2
UNION ALL
SELECT key_hash FROM api_keys WHERE user_id = $1 AND account_id = $2 AND revoked_at IS NULL
"""
REVOKE_API_KEY = """
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
WHERE id = $1 AND user_id = $2 AND account_id = $3
RETURNING key_hash
"""
REVOKE_API_KEY_ANY = """
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING key_hash
"""

# Every credential through which the user acts on the account: dropped from the caches when
# their role there changes or they leave it.
CREDENTIALS_OF_MEMBER = """
SELECT token_hash FROM sessions WHERE user_id = $1
UNION ALL
SELECT key_hash FROM api_keys WHERE user_id = $1 AND account_id = $2 AND revoked_at IS NULL
"""
LIST_SESSIONS = """
SELECT id, created_at, expires_at FROM sessions
WHERE user_id = $1 AND expires_at > now()
ORDER BY created_at DESC
"""
DELETE_USER_SESSION = "DELETE FROM sessions WHERE id = $1 AND user_id = $2 RETURNING token_hash"
DELETE_OTHER_SESSIONS = "DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING token_hash"
LIST_ACCOUNT_API_KEYS = """
SELECT k.id, k.prefix, k.name, k.created_at, k.revoked_at, u.email AS user_email
FROM api_keys k JOIN users u ON u.id = k.user_id
WHERE k.account_id = $1
ORDER BY k.created_at
"""
REVOKE_ACCOUNT_API_KEY = """
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
WHERE id = $1 AND account_id = $2
RETURNING key_hash
"""


async def principal_by_api_key(db: Executor, key_hash: bytes) -> Principal | None:
    row = await db.fetchrow(PRINCIPAL_BY_API_KEY, key_hash)
    return None if row is None else _principal(row, Credential.API_KEY, key_hash)


async def principal_by_session(db: Executor, session_hash: bytes) -> Principal | None:
    row = await db.fetchrow(PRINCIPAL_BY_SESSION, session_hash)
    return None if row is None else _principal(row, Credential.SESSION, session_hash)


async def principals_by_hash(
    db: Executor, credential: Credential, hashes: list[bytes]
) -> dict[bytes, Principal]:
    """The live principals among ``hashes`` of one kind; the gone ones are missing."""
    sql = PRINCIPALS_BY_API_KEYS if credential is Credential.API_KEY else PRINCIPALS_BY_SESSIONS
    rows = await db.fetch(sql, hashes)
    return {row[0]: _principal(row, credential, row[0]) for row in rows}


def _principal(row: asyncpg.Record, credential: Credential, token_hash: bytes) -> Principal:
    return Principal(
        user_id=row["user_id"],
        account_id=row["account_id"],
        permissions=frozenset(row["permissions"]),
        credential=credential,
        credential_id=row["id"],
        token_hash=token_hash,
    )


async def insert_session(
    db: Executor, session_hash: bytes, user_id: UUID, account_id: UUID | None, expires: datetime
) -> UUID:
    session_id: UUID = await db.fetchval(INSERT_SESSION, session_hash, user_id, account_id, expires)
    return session_id


async def delete_session(db: Executor, session_id: UUID) -> None:
    await db.execute(DELETE_SESSION, session_id)


async def delete_expired_sessions(db: Executor, now: datetime, limit: int) -> int:
    """Up to ``limit`` sessions expired by ``now``; returns how many went."""
    status: str = await db.execute(DELETE_EXPIRED_SESSIONS, now, limit)
    return int(status.rsplit(" ", 1)[1])


async def set_active_account(db: Executor, session_id: UUID, account_id: UUID) -> None:
    await db.execute(SET_ACTIVE_ACCOUNT, session_id, account_id)


async def insert_api_key(
    db: Executor, key_hash: bytes, prefix: str, name: str, user_id: UUID, account_id: UUID
) -> tuple[UUID, datetime]:
    row = await db.fetchrow(INSERT_API_KEY, key_hash, prefix, name, user_id, account_id)
    assert row is not None
    return row["id"], row["created_at"]


async def list_api_keys(
    db: Executor, user_id: UUID, account_id: UUID, after: UUID | None, limit: int
) -> list[asyncpg.Record]:
    return list(await db.fetch(LIST_API_KEYS, user_id, account_id, after, limit))


async def get_api_key(db: Executor, key_id: UUID) -> asyncpg.Record | None:
    return await db.fetchrow(GET_API_KEY, key_id)


async def lock_user(db: Executor, user_id: UUID) -> None:
    await db.execute(LOCK_USER, user_id)


async def count_live_api_keys(db: Executor, user_id: UUID) -> int:
    count: int = await db.fetchval(COUNT_LIVE_API_KEYS, user_id)
    return count


async def member_credential_hashes(db: Executor, user_id: UUID, account_id: UUID) -> list[bytes]:
    return [row[0] for row in await db.fetch(MEMBER_CREDENTIAL_HASHES, user_id, account_id)]


async def revoke_api_key(
    db: Executor, key_id: UUID, user_id: UUID | None = None, account_id: UUID | None = None
) -> bytes | None:
    """Revoke a key (of that user and account, when given); returns its hash, None if not found."""
    if user_id is None or account_id is None:
        key_hash: bytes | None = await db.fetchval(REVOKE_API_KEY_ANY, key_id)
    else:
        key_hash = await db.fetchval(REVOKE_API_KEY, key_id, user_id, account_id)
    return key_hash


async def credentials_of_member(db: Executor, user_id: UUID, account_id: UUID) -> list[bytes]:
    return [r[0] for r in await db.fetch(CREDENTIALS_OF_MEMBER, user_id, account_id)]


async def list_sessions(db: Executor, user_id: UUID) -> list[asyncpg.Record]:
    return list(await db.fetch(LIST_SESSIONS, user_id))


async def delete_user_session(db: Executor, session_id: UUID, user_id: UUID) -> bytes | None:
    token_hash: bytes | None = await db.fetchval(DELETE_USER_SESSION, session_id, user_id)
    return token_hash


async def delete_other_sessions(db: Executor, user_id: UUID, keep: UUID) -> list[bytes]:
    return [r[0] for r in await db.fetch(DELETE_OTHER_SESSIONS, user_id, keep)]


async def list_account_api_keys(db: Executor, account_id: UUID) -> list[asyncpg.Record]:
    return list(await db.fetch(LIST_ACCOUNT_API_KEYS, account_id))


async def revoke_account_api_key(db: Executor, key_id: UUID, account_id: UUID) -> bytes | None:
    key_hash: bytes | None = await db.fetchval(REVOKE_ACCOUNT_API_KEY, key_id, account_id)
    return key_hash
