"""Is the database's schema the one this release needs? Only `lumio migrate` changes it (issue 9)."""

from __future__ import annotations

from functools import lru_cache

import asyncpg
from alembic.script import ScriptDirectory

from lumio.db.migrate import alembic_config
from lumio.db.pool import Executor

CURRENT_REVISION = "SELECT version_num FROM alembic_version"


class SchemaNotAtHead(Exception):
    """The schema is older (or newer) than this release's migrations: refuse to start.

    A plain exception (the db package sits below the kit's errors); ``detail`` is the one line
    the process says before it exits."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None, "the release carries its migrations"
    return head


async def current_revision(db: Executor) -> str | None:
    try:
        revision: str | None = await db.fetchval(CURRENT_REVISION)
    except asyncpg.UndefinedTableError:
        return None
    return revision


async def check_schema(db: Executor) -> None:
    """Raise SchemaNotAtHead (one line saying what to run) unless the schema is at head."""
    current, head = await current_revision(db), head_revision()
    if current != head:
        raise SchemaNotAtHead(
            f"database schema is at {current or 'nothing (empty database)'}, this release needs "
            f"{head}: run `lumio migrate`"
        )
