"""Managing an account's members: the rules of DESIGN §8 and the operations REST, GraphQL and
the CLI share.

Rules: `members:manage` is needed; only an Owner manages Owners (changes an Owner, makes one,
invites one); the last Owner can be neither removed nor demoted; nobody raises their own role.
The admin CLI acts as no member (``actor`` None) and is held to the last-Owner rule only.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID

import asyncpg
from redis.asyncio import Redis

from lumio.accounts import passwords
from lumio.accounts import repository as accounts_repository
from lumio.accounts.schemas import Member
from lumio.accounts.service import check_password, normalise_email
from lumio.auth.service import invalidate_member
from lumio.db.pool import Executor
from lumio.kit import secrets
from lumio.kit.auth_cache import AuthCache
from lumio.kit.clock import utc_now
from lumio.kit.errors import BadRequest, Conflict, Forbidden, NotFound
from lumio.kit.permissions import ROLE_RANK, Permission, RoleName
from lumio.kit.principal import Principal
from lumio.members import repository
from lumio.members.schemas import (
    Actor,
    ClaimedInvitation,
    CreatedInvitation,
    Invitation,
    InviteOutcome,
)

INVITATION_TTL = timedelta(days=7)
_UNKNOWN_LINK = "this invitation link is unknown, used or expired"
_LAST_OWNER = "the last Owner can be neither removed nor demoted: make another member Owner first"


def parse_role(value: str) -> RoleName:
    try:
        return RoleName(value.strip().lower())
    except ValueError as exc:
        known = ", ".join(r.value for r in RoleName)
        raise BadRequest(f"unknown role {value!r}; one of {known}") from exc


def check_manage(actor: Actor | None, target: RoleName, new: RoleName | None) -> None:
    """May ``actor`` change a member of role ``target`` to ``new`` (None: remove them)?"""
    if actor is None:
        return
    if RoleName.OWNER in (target, new) and actor.role is not RoleName.OWNER:
        raise Forbidden("only an Owner manages Owners")


def check_not_raising_self(
    actor: Actor | None, user_id: UUID, target: RoleName, new: RoleName
) -> None:
    if actor is not None and actor.user_id == user_id and ROLE_RANK[new] > ROLE_RANK[target]:
        raise Forbidden("you cannot raise your own role")


def check_owners_left(owners: set[UUID], user_id: UUID, new: RoleName | None) -> None:
    if new is not RoleName.OWNER and owners <= {user_id}:
        raise Conflict(_LAST_OWNER)


async def actor_of(db: asyncpg.Pool, principal: Principal) -> tuple[UUID, Actor]:
    """The active account and the principal as a member managing it."""
    account_id = principal.require(Permission.MEMBERS_MANAGE)
    role = await accounts_repository.member_role(db, account_id, principal.user_id)
    if role is None:
        raise Forbidden("you are no longer a member of this account")
    return account_id, Actor(principal.user_id, role)


async def list_members(db: asyncpg.Pool, account_id: UUID) -> list[Member]:
    return await accounts_repository.list_members(db, account_id)


async def _find(db: asyncpg.Pool, account_id: UUID, user_id: UUID) -> Member:
    for member in await accounts_repository.list_members(db, account_id):
        if member.user_id == user_id:
            return member
    raise NotFound("no such member of this account")


async def _locked_role(
    conn: Executor, account_id: UUID, user_id: UUID
) -> tuple[set[UUID], RoleName]:
    """The account's Owners (locked, so concurrent changes take turns) and the member's role."""
    owners = await accounts_repository.lock_owners(conn, account_id)
    current = await accounts_repository.member_role(conn, account_id, user_id)
    if current is None:
        raise NotFound("no such member of this account")
    return owners, current


async def change_role(
    db: asyncpg.Pool,
    redis: Redis,
    cache: AuthCache,
    account_id: UUID,
    actor: Actor | None,
    user_id: UUID,
    role: RoleName,
) -> Member:
    async with db.acquire() as conn, conn.transaction():
        owners, current = await _locked_role(conn, account_id, user_id)
        check_manage(actor, current, role)
        check_not_raising_self(actor, user_id, current, role)
        if current is RoleName.OWNER:
            check_owners_left(owners, user_id, role)
        await accounts_repository.set_member_role(conn, account_id, user_id, role)
    await invalidate_member(db, redis, cache, account_id, user_id)
    return await _find(db, account_id, user_id)


async def remove_member(
    db: asyncpg.Pool,
    redis: Redis,
    cache: AuthCache,
    account_id: UUID,
    actor: Actor | None,
    user_id: UUID,
) -> None:
    async with db.acquire() as conn, conn.transaction():
        owners, current = await _locked_role(conn, account_id, user_id)
        check_manage(actor, current, None)
        if current is RoleName.OWNER:
            check_owners_left(owners, user_id, None)
        await accounts_repository.delete_member(conn, account_id, user_id)
    await invalidate_member(db, redis, cache, account_id, user_id)


async def _create_invitation(
    db: asyncpg.Pool, account_id: UUID, actor: Actor | None, email: str, role: RoleName
) -> CreatedInvitation:
    token = secrets.new_session_token()
    expires = utc_now() + INVITATION_TTL
    invited_by = actor.user_id if actor else None
    invitation = await repository.insert_invitation(
        db, account_id, email, role, secrets.token_hash(token), invited_by, expires
    )
    return CreatedInvitation(invitation, token)


async def invite_member(
    db: asyncpg.Pool, account_id: UUID, actor: Actor | None, email: str, role: RoleName
) -> InviteOutcome:
    """Add an existing user at once; for an unknown email make a 7-day, single-use link."""
    email = normalise_email(email)
    check_manage(actor, RoleName.VIEWER, role)
    found = await accounts_repository.user_with_hash(db, email)
    if found is None:
        return InviteOutcome(None, await _create_invitation(db, account_id, actor, email, role))
    user_id = found[0].id
    if await accounts_repository.member_role(db, account_id, user_id) is not None:
        raise Conflict(f"{email} is a member already; change their role instead")
    await accounts_repository.upsert_member(db, account_id, user_id, role)
    return InviteOutcome(await _find(db, account_id, user_id), None)


async def list_invitations(db: asyncpg.Pool, account_id: UUID) -> list[Invitation]:
    return await repository.list_pending(db, account_id)


async def revoke_invitation(db: asyncpg.Pool, account_id: UUID, invitation_id: UUID) -> None:
    if not await repository.delete_invitation(db, invitation_id, account_id):
        raise NotFound("no such invitation")


async def accept_invitation(db: asyncpg.Pool, token: str, password: str) -> ClaimedInvitation:
    """Use an invitation link: create its user with ``password`` and make them a member."""
    check_password(password)
    token_hash = secrets.token_hash(token)
    # Hash the password (tens of ms of CPU) only for a link that exists.
    if not await repository.is_pending(db, token_hash):
        raise NotFound(_UNKNOWN_LINK)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    async with db.acquire() as conn, conn.transaction():
        claimed = await repository.claim_invitation(conn, token_hash)
        if claimed is None:
            raise NotFound(_UNKNOWN_LINK)
        if await accounts_repository.user_with_hash(conn, claimed.email) is not None:
            raise Conflict("a user with this email exists already: sign in and ask to be added")
        user_id = await accounts_repository.insert_user(conn, claimed.email, password_hash)
        await accounts_repository.upsert_member(conn, claimed.account_id, user_id, claimed.role)
    return claimed


async def by_email(db: asyncpg.Pool, account_id: UUID, email: str) -> UUID:
    """The user id of a member of the account, by email (the CLI names members so)."""
    email = normalise_email(email)
    for member in await accounts_repository.list_members(db, account_id):
        if member.email == email:
            return member.user_id
    raise NotFound(f"{email} is not a member of this account")
