"""Permissions and the default roles created with every account (DESIGN §8)."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    SPOTIFY_READ = "spotify:read"
    SPOTIFY_WORKER = "spotify:worker"
    CHANNELS_MANAGE = "channels:manage"
    MEMBERS_MANAGE = "members:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"


class RoleName(StrEnum):
    OWNER = "owner"
    ADMINISTRATOR = "administrator"
    MODERATOR = "moderator"
    VIEWER = "viewer"


# Highest first: a member may not raise their own role up this list.
ROLE_RANK: dict[RoleName, int] = {
    RoleName.OWNER: 3,
    RoleName.ADMINISTRATOR: 2,
    RoleName.MODERATOR: 1,
    RoleName.VIEWER: 0,
}

_MANAGERS = frozenset(
    {
        Permission.SPOTIFY_READ,
        Permission.SPOTIFY_WORKER,
        Permission.CHANNELS_MANAGE,
        Permission.MEMBERS_MANAGE,
        Permission.WEBHOOKS_MANAGE,
    }
)

DEFAULT_ROLES: dict[RoleName, frozenset[Permission]] = {
    # Both manage members; only an Owner manages Owners (lumio.members.rules).
    RoleName.OWNER: _MANAGERS,
    RoleName.ADMINISTRATOR: _MANAGERS,
    RoleName.MODERATOR: frozenset({Permission.SPOTIFY_READ}),
    RoleName.VIEWER: frozenset(),
}
