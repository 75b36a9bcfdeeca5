"""History retention, a loop of `lumio worker`: downsample old raw samples, drop old sessions.

Replicas take turns through a PostgreSQL advisory lock held for one transaction: one replica
works at a time, and a dead one's lock is gone with its connection. Each run does bounded
batches (``batch`` sessions each) so that no transaction grows with the backlog; a run that
filled its batches asks to run again at once. It also closes sessions left open by a crash
whose channel no longer shows them live (boot recovery, then every run).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from lumio.history import repository
from lumio.kit.clock import Clock, utc_now
from lumio.kit.loops import LoopService
from lumio.kit.settings import Settings

log = logging.getLogger(__name__)

BUCKET = timedelta(minutes=5)


def bucket_floor(moment: datetime) -> datetime:
    """The start of the 5-minute bucket holding ``moment`` (buckets count from the epoch)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (moment - epoch) // BUCKET * BUCKET


class HistoryRetention(LoopService):
    name = "history-retention"

    def __init__(
        self,
        db: asyncpg.Pool,
        raw_days: float,
        keep_days: float,
        batch: int,
        interval: timedelta,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(interval)
        self.db = db
        self.raw_window = timedelta(days=raw_days)
        # 0: sessions are kept forever.
        self.keep_window = timedelta(days=keep_days) if keep_days > 0 else None
        self.batch = batch
        self.clock = clock

    @classmethod
    def from_settings(cls, db: asyncpg.Pool, settings: Settings) -> HistoryRetention:
        return cls(
            db,
            settings.history.raw_days,
            settings.history.days,
            settings.history.retention_batch,
            settings.history.retention_interval,
        )

    async def run_once(self) -> timedelta | None:
        now = self.clock()
        async with self.db.acquire() as conn, conn.transaction():
            if not await repository.try_retention_lock(conn):
                return None
            closed = await repository.close_orphans(conn)
            downsampled = await repository.downsample(
                conn, bucket_floor(now - self.raw_window), self.batch
            )
            dropped = 0
            if self.keep_window is not None:
                dropped = await repository.delete_old_sessions(
                    conn, now - self.keep_window, self.batch
                )
        if closed or downsampled or dropped:
            log.info(
                "history: %d orphaned sessions closed, %d raw samples downsampled, "
                "%d old sessions dropped",
                closed,
                downsampled,
                dropped,
            )
        more = downsampled > 0 or dropped >= self.batch
        return timedelta(0) if more else None
