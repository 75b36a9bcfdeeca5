"""Creating users, accounts and memberships (the admin CLI and `lumio dev` call these)."""

from __future__ import annotations

import re
from uuid import UUID

import asyncpg

from lumio.accounts import passwords, repository
from lumio.accounts.schemas import Membership
from lumio.kit.errors import BadRequest, Conflict, NotFound
from lumio.kit.permissions import RoleName
from lumio.kit.principal import Credential, Principal

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    cleaned = email.strip().lower()
    if len(cleaned) > 320 or not _EMAIL.match(cleaned):
        raise BadRequest(f"not a valid email address: {email!r}")
    return cleaned


def check_password(password: str) -> None:
    if not passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
        raise BadRequest(
            f"a password needs {passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters"
        )


async def create_user(db: asyncpg.Pool, email: str, password: str) -> UUID:
    email = normalise_email(email)
    check_password(password)
    try:
        return await repository.insert_user(db, email, passwords.hash_password(password))
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a user with the email {email} exists already") from exc


async def user_id_by_email(db: asyncpg.Pool, email: str) -> UUID:
    found = await repository.user_with_hash(db, normalise_email(email))
    if found is None:
        raise NotFound(f"no user with the email {email}")
    return found[0].id


async def create_account(db: asyncpg.Pool, name: str, owner_email: str) -> UUID:
    """Create an account with its four default roles and make ``owner_email`` its owner."""
    return await _create_owned(db, name, await user_id_by_email(db, owner_email))


async def create_account_for(db: asyncpg.Pool, principal: Principal, name: str) -> UUID:
    """A signed-in user creates an account and becomes its Owner."""
    if principal.credential is not Credential.SESSION:
        raise BadRequest("an API key is bound to one account; sign in to create another")
    return await _create_owned(db, name, principal.user_id)


async def _create_owned(db: asyncpg.Pool, name: str, owner_id: UUID) -> UUID:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise BadRequest("an account name needs 1 to 200 characters")
    async with db.acquire() as conn, conn.transaction():
        account_id = await repository.insert_account_with_roles(conn, name)
        await repository.upsert_member(conn, account_id, owner_id, RoleName.OWNER)
    return account_id


async def add_member(db: asyncpg.Pool, account_id: UUID, email: str, role: RoleName) -> UUID:
    """Add the user to the account with ``role`` (or change their role); returns the user id."""
    user_id = await user_id_by_email(db, email)
    if not await repository.account_exists(db, account_id):
        raise NotFound(f"no account with the id {account_id}")
    if not await repository.upsert_member(db, account_id, user_id, role):
        raise NotFound(f"the account has no role {role.value}")
    return user_id


async def memberships(db: asyncpg.Pool, user_id: UUID) -> list[Membership]:
    return await repository.memberships(db, user_id)
