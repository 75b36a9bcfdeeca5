"""Permissions and the default roles created with every account (DESIGN §8)."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    SPOTIFY_READ = "spotify:read"
    SPOTIFY_WORKER = "spotify:worker"
    CHANNELS_MANAGE = "channels:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"


class RoleName(StrEnum):
    OWNER = "owner"
    ADMINISTRATOR = "administrator"
    MODERATOR = "moderator"
    VIEWER = "viewer"


DEFAULT_ROLES: dict[RoleName, frozenset[Permission]] = {
    RoleName.OWNER: frozenset(
        {
            Permission.SPOTIFY_READ,
            Permission.SPOTIFY_WORKER,
            Permission.CHANNELS_MANAGE,
            Permission.WEBHOOKS_MANAGE,
        }
    ),
    RoleName.ADMINISTRATOR: frozenset(
        {
            Permission.SPOTIFY_READ,
            Permission.SPOTIFY_WORKER,
            Permission.CHANNELS_MANAGE,
            Permission.WEBHOOKS_MANAGE,
        }
    ),
    RoleName.MODERATOR: frozenset({Permission.SPOTIFY_READ}),
    RoleName.VIEWER: frozenset(),
}
