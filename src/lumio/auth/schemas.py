"""Data passed between the auth layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from lumio.kit.views import ApiModel


@dataclass(frozen=True, slots=True)
class LoginResult:
    session_token: str
    csrf_token: str
    user_id: UUID
    active_account_id: UUID | None
    expires_at: datetime


class ApiKeyInfo(ApiModel):
    """An API key as REST renders it (never the secret)."""

    id: UUID
    prefix: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = None


class AccountApiKeyInfo(ApiKeyInfo):
    """A key in the Owner's view of every key of the account: with whose key it is."""

    user_email: str | None


class SessionInfo(ApiModel):
    """One of the user's sessions, as REST renders it."""

    id: UUID
    created_at: datetime
    expires_at: datetime
    current: bool


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    info: ApiKeyInfo
    # Shown once, never stored.
    key: str


class AccountView(ApiModel):
    """An account as its member sees it: with their role and whether it is the active one
    (REST and GraphQL render this one declaration)."""

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
