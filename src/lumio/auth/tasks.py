"""The auth domain's background loop: expired sessions are deleted (the API process runs it)."""

from __future__ import annotations

import logging
from datetime import timedelta

import asyncpg

from lumio.auth import repository as auth_repository
from lumio.kit.clock import Clock, utc_now
from lumio.kit.loops import LoopService

log = logging.getLogger(__name__)


class SessionSweeper(LoopService):
    """Every ``interval``, deletes expired sessions in batches of ``batch_size``.

    An expired session already authenticates nobody (the look-up checks ``expires_at``); this
    only keeps the table from growing. Several API processes may sweep at once (SKIP LOCKED).
    """

    name = "session-sweeper"

    def __init__(
        self,
        db: asyncpg.Pool,
        interval: timedelta = timedelta(hours=1),
        batch_size: int = 1000,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(interval)
        self.db = db
        self.batch_size = batch_size
        self.clock = clock

    async def run_once(self) -> None:
        swept = 0
        while not self.stopping:
            deleted = await auth_repository.delete_expired_sessions(
                self.db, self.clock(), self.batch_size
            )
            swept += deleted
            if deleted < self.batch_size:
                break
        if swept:
            log.info("deleted %d expired session(s)", swept)
