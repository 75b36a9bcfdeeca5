"""Authentication: log in and out, verify credentials, switch the active account, API keys."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.accounts import passwords
from lumio.accounts import repository as accounts_repository
from lumio.accounts.service import check_password, normalise_email
from lumio.auth import repository as auth_repository
from lumio.auth.schemas import (
    AccountApiKeyInfo,
    AccountView,
    ApiKeyInfo,
    ApiKeyPage,
    CreatedApiKey,
    LoginResult,
    SessionInfo,
    SignInAttempt,
)
from lumio.auth.throttle import LoginThrottle
from lumio.kit import secrets
from lumio.kit.auth_cache import INVALIDATE_CHANNEL, AuthCache
from lumio.kit.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthenticated
from lumio.kit.permissions import RoleName
from lumio.kit.principal import Credential, Principal

log = logging.getLogger(__name__)

_BAD_LOGIN = "wrong email or password"
_SESSION_GONE = "the session has expired or is invalid; sign in again"


async def login(
    db: asyncpg.Pool,
    throttle: LoginThrottle,
    attempt: SignInAttempt,
    ttl: timedelta,
    hashing: Executor | None = None,
) -> LoginResult:
    """Sign in; throttled per account and address, answered alike for unknown and wrong."""
    email = attempt.email.strip().lower()
    await asyncio.sleep(await throttle.admit(email, attempt.address))
    user = await _verified_user(db, email, attempt.password, hashing)
    if user is None:
        await throttle.failed(email, attempt.address)
        raise Unauthenticated(_BAD_LOGIN)
    await throttle.succeeded(email)
    member_of = await accounts_repository.memberships(db, user)
    active = member_of[0].account_id if member_of else None
    token = secrets.new_session_token()
    expires = datetime.now(UTC) + ttl
    await auth_repository.insert_session(db, secrets.token_hash(token), user, active, expires)
    return LoginResult(token, secrets.csrf_token_for(token), user, active, expires)


async def _verified_user(
    db: asyncpg.Pool, email: str, password: str, hashing: Executor | None
) -> UUID | None:
    try:
        email = normalise_email(email)
    except BadRequest:
        email = ""  # still verified against the dummy hash: same time as a wrong password
    found = await accounts_repository.user_with_hash(db, email) if email else None
    password_hash = found[1] if found else None
    if not await passwords.verify_password(password_hash, password, hashing) or found is None:
        return None
    return found[0].id


async def authenticate(
    db: asyncpg.Pool, cache: AuthCache, token: str, credential: Credential
) -> Principal:
    token_hash = secrets.token_hash(token)
    principal = cache.get(token_hash)
    if principal is not None and principal.credential is credential:
        if cache.claim_refresh(token_hash):
            _refresh_later(db, cache)
        return principal
    epoch = cache.epoch
    principal = await _principal(db, token_hash, credential)
    if principal is None:
        failure = "the API key is invalid or has been revoked"
        raise Unauthenticated(failure if credential is Credential.API_KEY else _SESSION_GONE)
    cache.put(principal, since=epoch)
    return principal


async def _principal(
    db: asyncpg.Pool, token_hash: bytes, credential: Credential
) -> Principal | None:
    if credential is Credential.API_KEY:
        return await auth_repository.principal_by_api_key(db, token_hash)
    return await auth_repository.principal_by_session(db, token_hash)


# Claimed refreshes wait this long so that one query reads all that came due meanwhile.
REFRESH_BATCH_SECONDS = 0.05
REFRESH_BATCH_MAX = 1000


def _refresh_later(db: asyncpg.Pool, cache: AuthCache) -> None:
    if cache.refresh_task is None or cache.refresh_task.done():
        cache.refresh_task = asyncio.create_task(_refresh_claimed(db, cache))


async def _refresh_claimed(db: asyncpg.Pool, cache: AuthCache) -> None:
    """Read the claimed credentials again, a batch per kind; a gone one leaves the cache.

    Runs until a wait finds nothing claimed, so that claims made while it read are not left
    waiting for the next claim to start a task.
    """
    while True:
        await asyncio.sleep(REFRESH_BATCH_SECONDS)
        claimed = cache.take_claimed()
        if not claimed:
            return
        try:
            for credential in Credential:
                hashes = [h for h, kind in claimed.items() if kind is credential]
                for start in range(0, len(hashes), REFRESH_BATCH_MAX):
                    chunk = hashes[start : start + REFRESH_BATCH_MAX]
                    await _refresh_batch(db, cache, credential, chunk)
        except Exception as exc:  # the entries just expire; the next miss reports the cause
            log.debug("could not refresh cached credentials: %r", exc)
        finally:
            cache.refreshed(claimed)


async def _refresh_batch(
    db: asyncpg.Pool, cache: AuthCache, credential: Credential, hashes: list[bytes]
) -> None:
    epoch = cache.epoch
    found = await auth_repository.principals_by_hash(db, credential, hashes)
    if cache.epoch != epoch:
        return  # something was revoked while we read: these entries just expire
    for principal in found.values():
        cache.put(principal)
    for token_hash in hashes:
        if token_hash not in found:
            cache.invalidate(token_hash)


async def reload_session(db: asyncpg.Pool, cache: AuthCache, token_hash: bytes) -> Principal:
    """Read a session afresh (after a switch) and cache it."""
    epoch = cache.epoch
    principal = await auth_repository.principal_by_session(db, token_hash)
    if principal is None:
        raise Unauthenticated(_SESSION_GONE)
    cache.put(principal, since=epoch)
    return principal


async def my_accounts(db: asyncpg.Pool, principal: Principal) -> list[AccountView]:
    """The principal's accounts; through an API key only the one the key is bound to."""
    views = [
        AccountView(
            id=m.account_id,
            name=m.account_name,
            role=m.role,
            active=m.account_id == principal.account_id,
        )
        for m in await accounts_repository.memberships(db, principal.user_id)
    ]
    if principal.credential is Credential.API_KEY:
        return [view for view in views if view.active]
    return views


async def forget(redis: Redis, cache: AuthCache, token_hash: bytes) -> None:
    """Drop a credential from this process's cache and, through Redis, from every other's."""
    cache.invalidate(token_hash)
    try:
        await redis.publish(INVALIDATE_CHANNEL, token_hash.hex())
    except (RedisError, OSError) as exc:
        # Other processes drop it when their entry expires (auth_cache_seconds).
        log.warning("could not announce a revoked credential: %s", exc)


async def logout(db: asyncpg.Pool, redis: Redis, cache: AuthCache, principal: Principal) -> None:
    if principal.credential is not Credential.SESSION:
        raise BadRequest("only a session can log out; revoke an API key instead")
    await auth_repository.delete_session(db, principal.credential_id)
    await forget(redis, cache, principal.token_hash)


async def switch_account(
    db: asyncpg.Pool, redis: Redis, cache: AuthCache, principal: Principal, account_id: UUID
) -> None:
    if principal.credential is not Credential.SESSION:
        raise BadRequest("an API key is bound to one account; it cannot switch")
    if not await accounts_repository.is_member(db, principal.user_id, account_id):
        raise NotFound("you are not a member of that account")
    await auth_repository.set_active_account(db, principal.credential_id, account_id)
    await forget(redis, cache, principal.token_hash)


async def switch_and_list(
    db: asyncpg.Pool, redis: Redis, cache: AuthCache, principal: Principal, account_id: UUID
) -> tuple[Principal, list[AccountView]]:
    """Switch the session's active account; the session read afresh, and its accounts."""
    await switch_account(db, redis, cache, principal, account_id)
    switched = await reload_session(db, cache, principal.token_hash)
    return switched, await my_accounts(db, switched)


def _key_info(row: asyncpg.Record) -> ApiKeyInfo:
    return ApiKeyInfo.model_validate(dict(row))


def _check_key_name(name: str) -> str:
    name = name.strip()
    if len(name) > 200:
        raise BadRequest("an API key name has at most 200 characters")
    return name


async def create_api_key(
    db: asyncpg.Pool, user_id: UUID, account_id: UUID, name: str = "", max_live: int | None = None
) -> CreatedApiKey:
    """A new key of the user on the account; with ``max_live``, refused past that many live keys."""
    name = _check_key_name(name)
    if not await accounts_repository.is_member(db, user_id, account_id):
        raise NotFound("the user is not a member of that account")
    key = secrets.new_api_key()
    prefix = key[:12]
    async with db.acquire() as conn, conn.transaction():
        await auth_repository.lock_user(conn, user_id)
        if max_live is not None and await auth_repository.count_live_api_keys(conn, user_id) >= (
            max_live
        ):
            raise Conflict(f"at most {max_live} live API keys per user; revoke one first")
        key_id, created = await auth_repository.insert_api_key(
            conn, secrets.token_hash(key), prefix, name, user_id, account_id
        )
    return CreatedApiKey(
        ApiKeyInfo(id=key_id, prefix=prefix, name=name, created_at=created, revoked_at=None), key
    )


def _active_account(principal: Principal) -> UUID:
    if principal.account_id is None:
        raise NotFound("you have no active account")
    return principal.account_id


def _require_session(principal: Principal, action: str) -> None:
    # A key that could mint or revoke keys would outlive its own revocation (its children)
    # or let one leaked key lock its owner out: keys are managed by a signed-in person.
    if principal.credential is not Credential.SESSION:
        raise Forbidden(f"{action} API keys needs a signed-in session, not an API key")


async def create_api_key_for(
    db: asyncpg.Pool, principal: Principal, name: str, max_live: int
) -> CreatedApiKey:
    _require_session(principal, "creating")
    return await create_api_key(db, principal.user_id, _active_account(principal), name, max_live)


async def list_api_keys(
    db: asyncpg.Pool, principal: Principal, after: UUID | None = None, limit: int = 50
) -> ApiKeyPage:
    """The user's keys on the active account, a page at a time; a key sees only itself."""
    if principal.credential is Credential.API_KEY:
        row = await auth_repository.get_api_key(db, principal.credential_id)
        own = [_key_info(row)] if row is not None and after is None else []
        return ApiKeyPage(own, None)
    account_id = _active_account(principal)
    rows = await auth_repository.list_api_keys(db, principal.user_id, account_id, after, limit + 1)
    keys = [_key_info(row) for row in rows[:limit]]
    return ApiKeyPage(keys, keys[-1].id if len(rows) > limit else None)


async def revoke_api_key(
    db: asyncpg.Pool, redis: Redis, cache: AuthCache, key_id: UUID, principal: Principal | None
) -> None:
    """Revoke one of the principal's keys on its active account (any key when principal is None)."""
    if principal is None:
        key_hash = await auth_repository.revoke_api_key(db, key_id)
    else:
        _require_session(principal, "revoking")
        key_hash = await auth_repository.revoke_api_key(
            db, key_id, principal.user_id, _active_account(principal)
        )
    if key_hash is None:
        raise NotFound("no such API key")
    await forget(redis, cache, key_hash)


async def invalidate_member(
    db: asyncpg.Pool, redis: Redis, cache: AuthCache, account_id: UUID, user_id: UUID
) -> None:
    """A member was removed or their role changed: drop every cached principal of theirs on
    the account (sessions on it, their keys for it) here and in every API process at once.

    Call it after the change is committed; a later request then reads the new role (or none).
    """
    for token_hash in await auth_repository.member_credential_hashes(db, user_id, account_id):
        await forget(redis, cache, token_hash)


def _session_only(principal: Principal, what: str) -> None:
    if principal.credential is not Credential.SESSION:
        raise BadRequest(f"{what} needs a signed-in session, not an API key")


async def change_password(
    db: asyncpg.Pool,
    redis: Redis,
    cache: AuthCache,
    principal: Principal,
    current: str,
    new: str,
) -> None:
    """Set a new password; every other session of the user ends (this one stays)."""
    _session_only(principal, "changing the password")
    stored = await accounts_repository.password_hash_of(db, principal.user_id)
    if stored is None or not await passwords.verify_password(stored, current):
        raise Forbidden("the current password is wrong")
    check_password(new)
    new_hash = await asyncio.to_thread(passwords.hash_password, new)
    async with db.acquire() as conn, conn.transaction():
        await accounts_repository.update_password(conn, principal.user_id, new_hash)
        ended = await auth_repository.delete_other_sessions(
            conn, principal.user_id, principal.credential_id
        )
    for token_hash in ended:
        await forget(redis, cache, token_hash)


async def list_sessions(db: asyncpg.Pool, principal: Principal) -> list[SessionInfo]:
    rows = await auth_repository.list_sessions(db, principal.user_id)
    current = principal.credential_id if principal.credential is Credential.SESSION else None
    return [
        SessionInfo(
            id=r["id"],
            created_at=r["created_at"],
            expires_at=r["expires_at"],
            current=r["id"] == current,
        )
        for r in rows
    ]


async def end_session(
    db: asyncpg.Pool, redis: Redis, cache: AuthCache, principal: Principal, session_id: UUID
) -> None:
    """End one of the user's own sessions (any other user's is "not found")."""
    token_hash = await auth_repository.delete_user_session(db, session_id, principal.user_id)
    if token_hash is None:
        raise NotFound("no such session")
    await forget(redis, cache, token_hash)


async def _require_owner(db: asyncpg.Pool, principal: Principal) -> UUID:
    account_id = _active_account(principal)
    role = await accounts_repository.member_role(db, account_id, principal.user_id)
    if role is not RoleName.OWNER:
        raise Forbidden("only an Owner sees and revokes every API key of the account")
    return account_id


async def list_account_api_keys(db: asyncpg.Pool, principal: Principal) -> list[AccountApiKeyInfo]:
    """Every key of the active account, whoever made it (Owners only)."""
    account_id = await _require_owner(db, principal)
    rows = await auth_repository.list_account_api_keys(db, account_id)
    return [AccountApiKeyInfo.model_validate(dict(r)) for r in rows]


async def revoke_account_api_key(
    db: asyncpg.Pool, redis: Redis, cache: AuthCache, principal: Principal, key_id: UUID
) -> None:
    account_id = await _require_owner(db, principal)
    key_hash = await auth_repository.revoke_account_api_key(db, key_id, account_id)
    if key_hash is None:
        raise NotFound("no such API key")
    await forget(redis, cache, key_hash)
