"""All SQL of invitations (memberships themselves live in lumio.accounts.repository)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from lumio.db.pool import Executor
from lumio.kit.permissions import RoleName
from lumio.members.schemas import ClaimedInvitation, Invitation

INSERT_INVITATION = """
INSERT INTO invitations (account_id, email, role, token_hash, invited_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, email, role, created_at, expires_at
"""
LIST_PENDING = """
SELECT id, email, role, created_at, expires_at FROM invitations
WHERE account_id = $1 AND used_at IS NULL AND expires_at > now()
ORDER BY created_at
"""
DELETE_INVITATION = "DELETE FROM invitations WHERE id = $1 AND account_id = $2 RETURNING id"
IS_PENDING = """
SELECT EXISTS (
    SELECT 1 FROM invitations WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
)
"""
# Single use: the first claim marks it used; a second one (or a late one) finds nothing.
CLAIM_INVITATION = """
UPDATE invitations SET used_at = now()
WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
RETURNING account_id, email, role
"""


def _invitation(row: asyncpg.Record) -> Invitation:
    return Invitation(
        row["id"], row["email"], RoleName(row["role"]), row["created_at"], row["expires_at"]
    )


async def insert_invitation(
    db: Executor,
    account_id: UUID,
    email: str,
    role: RoleName,
    token_hash: bytes,
    invited_by: UUID | None,
    expires_at: datetime,
) -> Invitation:
    row = await db.fetchrow(
        INSERT_INVITATION, account_id, email, role.value, token_hash, invited_by, expires_at
    )
    assert row is not None
    return _invitation(row)


async def list_pending(db: Executor, account_id: UUID) -> list[Invitation]:
    return [_invitation(r) for r in await db.fetch(LIST_PENDING, account_id)]


async def delete_invitation(db: Executor, invitation_id: UUID, account_id: UUID) -> bool:
    return await db.fetchval(DELETE_INVITATION, invitation_id, account_id) is not None


async def is_pending(db: Executor, token_hash: bytes) -> bool:
    return bool(await db.fetchval(IS_PENDING, token_hash))


async def claim_invitation(db: Executor, token_hash: bytes) -> ClaimedInvitation | None:
    row = await db.fetchrow(CLAIM_INVITATION, token_hash)
    if row is None:
        return None
    return ClaimedInvitation(row["account_id"], row["email"], RoleName(row["role"]))
