"""Data passed between the members layers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from lumio.accounts.schemas import Member
from lumio.kit.permissions import RoleName


@dataclass(frozen=True, slots=True)
class Invitation:
    id: UUID
    email: str
    role: RoleName
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CreatedInvitation:
    invitation: Invitation
    # Shown once, never stored: the link's secret.
    token: str

    @property
    def path(self) -> str:
        # A fragment: the secret never reaches a server log or a Referer.
        return f"/#invitation={self.token}"


@dataclass(frozen=True, slots=True)
class InviteOutcome:
    """An existing user is added at once; anyone else gets an invitation link."""

    member: Member | None
    invitation: CreatedInvitation | None


@dataclass(frozen=True, slots=True)
class ClaimedInvitation:
    account_id: UUID
    email: str
    role: RoleName


@dataclass(frozen=True, slots=True)
class Actor:
    """Who manages members: a member of the account with their role, or the admin CLI (None)."""

    user_id: UUID
    role: RoleName
