"""Data passed between the auth layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class LoginResult:
    session_token: str
    csrf_token: str
    user_id: UUID
    active_account_id: UUID | None
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: UUID
    prefix: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    info: ApiKeyInfo
    # Shown once, never stored.
    key: str


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account as its member sees it: with their role and whether it is the active one."""

    id: UUID
    name: str
    role: str
    active: bool


@dataclass(frozen=True, slots=True)
class ApiKeyPage:
    keys: list[ApiKeyInfo]
    # Pass as ``after`` for the next page; None on the last one.
    next_after: UUID | None


@dataclass(frozen=True, slots=True)
class SignInAttempt:
    email: str
    password: str = field(repr=False)
    # The client's address (from the trusted proxy's X-Forwarded-For, else the peer).
    address: str = "unknown"
