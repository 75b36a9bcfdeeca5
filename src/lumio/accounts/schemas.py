"""Data passed between the accounts layers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from lumio.kit.permissions import RoleName


@dataclass(frozen=True, slots=True)
class Membership:
    account_id: UUID
    account_name: str
    role: str


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str


@dataclass(frozen=True, slots=True)
class Member:
    user_id: UUID
    email: str
    role: RoleName
    joined_at: datetime
