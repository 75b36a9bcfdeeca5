"""Data passed between the accounts layers."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Membership:
    account_id: UUID
    account_name: str
    role: str


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
