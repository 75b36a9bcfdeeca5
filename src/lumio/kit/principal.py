"""The principal: the authenticated user and the active account of one request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from lumio.kit.errors import Forbidden
from lumio.kit.permissions import Permission


class Credential(StrEnum):
    SESSION = "session"
    API_KEY = "api_key"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    account_id: UUID | None
    permissions: frozenset[str]
    credential: Credential
    # The id of the session or API key row, for logout, switching and revocation.
    credential_id: UUID
    token_hash: bytes

    def require(self, permission: Permission) -> UUID:
        """Return the active account when the principal holds ``permission`` on it."""
        if self.account_id is None or permission.value not in self.permissions:
            raise Forbidden(f"this needs the permission {permission.value} on the active account")
        return self.account_id
