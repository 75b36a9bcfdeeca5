"""What the API may do with channel status; REST and GraphQL both call these."""

from __future__ import annotations

import asyncpg

from lumio.channel_status import repository
from lumio.channel_status.schemas import StatusRow
from lumio.kit.permissions import Permission
from lumio.kit.principal import Principal


async def read_channel_status(db: asyncpg.Pool, principal: Principal) -> list[StatusRow]:
    account_id = principal.require(Permission.SPOTIFY_READ)
    return await repository.get_status_rows(db, account_id)
