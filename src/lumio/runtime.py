"""Resolving where PostgreSQL and Redis are, starting embedded servers when no URL is set."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from lumio.db import migrate
from lumio.embedded import embedded_services
from lumio.kit.settings import Settings

log = logging.getLogger(__name__)


@contextlib.contextmanager
def services(settings: Settings, *, apply_migrations: bool = False) -> Iterator[Settings]:
    """Yield settings whose URLs point at running servers (migrated when asked to).

    Without DATABASE_URL / REDIS_URL, real servers are started in ``settings.data_dir`` and
    stopped on exit (a second process on the same folder shares them). Only `lumio migrate`
    and `lumio dev` on embedded servers migrate: every other process checks the schema.
    """
    with embedded_services(settings.data_dir, settings.db.url, settings.redis.url) as (
        database_url,
        redis_url,
    ):
        if not settings.db.url:
            log.info("embedded PostgreSQL at %s", database_url)
        if not settings.redis.url:
            log.info("embedded Redis at %s", redis_url)
        resolved = settings.updated({"db": {"url": database_url}, "redis": {"url": redis_url}})
        if apply_migrations:
            migrate.upgrade(database_url)
        yield resolved
