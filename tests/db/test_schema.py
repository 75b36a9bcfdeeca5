"""The migrated schema is the one the code expects (DESIGN §2), and migrations run both ways."""

from __future__ import annotations

import asyncio
import importlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from uuid import UUID

import asyncpg
import pytest
from alembic.script import ScriptDirectory

import lumio
from lumio.channel_status.schemas import ChannelStatus
from lumio.db import migrate
from lumio.db.pool import database_url_named
from tests.conftest import Factory


def repository_modules() -> list[ModuleType]:
    root = Path(lumio.__file__).parent
    names = sorted(p.parent.name for p in root.glob("*/repository.py"))
    return [importlib.import_module(f"lumio.{name}.repository") for name in names]


def sql_constants() -> list[tuple[str, str]]:
    """(module.NAME, SQL) of every module-level UPPERCASE str constant of the repositories."""
    found: list[tuple[str, str]] = []
    for module in repository_modules():
        for name, value in vars(module).items():
            if name.isupper() and not name.startswith("_") and isinstance(value, str):
                found.append((f"{module.__name__.rsplit('.', 2)[1]}.{name}", value))
    return found


SQL = sql_constants()


def test_the_repositories_hold_sql() -> None:
    # The discovery itself works: the known statements are among those found.
    names = {name for name, _ in SQL}
    assert {
        "channel_status.GET_STATUS",
        "channel_status.SET_ONLINE",
        "channel_status.SET_OFFLINE",
        "channel_status.UPDATE_STREAM_DATA",
        "channel_status.IS_ANY_ONLINE",
        "channel_status.GET_ALL_ONLINE_ACCOUNTS",
        "auth.PRINCIPAL_BY_API_KEY",
        "accounts.UPSERT_MEMBER",
    } <= names


def test_only_channel_status_writes_sql_about_its_table() -> None:
    # Other repositories ask channel_status's for its rows, or for a fragment of its SQL.
    touches = re.compile(r"\b(FROM|INTO|UPDATE|JOIN)\s+channel_status\b", re.IGNORECASE)
    for module in repository_modules():
        if module.__name__ != "lumio.channel_status.repository":
            source = Path(module.__file__ or "").read_text()
            assert not touches.search(source), module.__name__


@pytest.mark.parametrize(("name", "sql"), SQL, ids=[name for name, _ in SQL])
async def test_every_repository_query_prepares(db: asyncpg.Pool, name: str, sql: str) -> None:
    async with db.acquire() as conn:
        statement = await conn.prepare(sql)
        assert statement.get_parameters() is not None, name


async def test_get_status_columns_match_the_channel_status_record(db: asyncpg.Pool) -> None:
    # get_status builds ChannelStatus by column name: the columns must be the view's fields, in order.
    from lumio.channel_status.repository import GET_STATUS

    async with db.acquire() as conn:
        statement = await conn.prepare(GET_STATUS)
        columns = [a.name for a in statement.get_attributes()]
    assert columns == list(ChannelStatus.model_fields)


# --- channel_status -----------------------------------------------------------------------------

CHANNEL_STATUS_COLUMNS = [
    ("account_id", "uuid", True),
    ("platform", "text", True),
    ("is_online", "boolean", True),
    ("stream_title", "text", False),
    ("category", "text", False),
    ("viewer_count", "integer", False),
    ("started_at", "timestamp with time zone", False),
    ("updated_at", "timestamp with time zone", True),
]


async def test_channel_status_has_exactly_the_seed_columns(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull"
        " FROM pg_attribute a"
        " WHERE a.attrelid = 'channel_status'::regclass AND a.attnum > 0"
        " AND NOT a.attisdropped ORDER BY a.attnum"
    )
    assert [(r["attname"], r["type"], r["attnotnull"]) for r in rows] == CHANNEL_STATUS_COLUMNS


async def test_channel_status_primary_key_is_account_and_platform(db: asyncpg.Pool) -> None:
    columns = await db.fetchval(
        "SELECT array_agg(a.attname ORDER BY k.ord)"
        " FROM pg_constraint c"
        " CROSS JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
        " WHERE c.conrelid = 'channel_status'::regclass AND c.contype = 'p'"
    )
    assert columns == ["account_id", "platform"]


async def insert_status(
    db: asyncpg.Pool,
    account_id: UUID,
    platform: str,
    *,
    is_online: bool = True,
    started_at: datetime | None = None,
    viewer_count: int | None = 1,
) -> None:
    now = datetime.now(UTC)
    await db.execute(
        "INSERT INTO channel_status (account_id, platform, is_online, viewer_count, started_at,"
        " updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
        account_id,
        platform,
        is_online,
        viewer_count,
        started_at if started_at is not None else (now if is_online else None),
        now,
    )


async def test_platform_check_accepts_the_four_platforms(
    db: asyncpg.Pool, factory: Factory
) -> None:
    account_id, _ = await factory.account()
    for platform in ("twitch", "youtube", "kick", "trovo"):
        await insert_status(db, account_id, platform)
    assert await db.fetchval(
        "SELECT array_agg(platform ORDER BY platform) FROM channel_status WHERE account_id = $1",
        account_id,
    ) == ["kick", "trovo", "twitch", "youtube"]


@pytest.mark.parametrize("platform", ["tiktok", "Twitch", "", "twitch ", "spotify"])
async def test_platform_check_rejects_other_platforms(
    db: asyncpg.Pool, factory: Factory, platform: str
) -> None:
    account_id, _ = await factory.account()
    with pytest.raises(asyncpg.CheckViolationError) as raised:
        await insert_status(db, account_id, platform)
    assert raised.value.constraint_name == "channel_status_platform_check"
    assert await db.fetchval("SELECT count(*) FROM channel_status") == 0


async def test_one_row_per_account_and_platform(db: asyncpg.Pool, factory: Factory) -> None:
    account_id, _ = await factory.account()
    await insert_status(db, account_id, "kick")
    with pytest.raises(asyncpg.UniqueViolationError):
        await insert_status(db, account_id, "kick")


async def test_offline_rows_have_no_start_time(db: asyncpg.Pool, factory: Factory) -> None:
    account_id, _ = await factory.account()
    with pytest.raises(asyncpg.CheckViolationError):
        await insert_status(db, account_id, "twitch", is_online=False, started_at=datetime.now(UTC))
    with pytest.raises(asyncpg.CheckViolationError):
        await insert_status(db, account_id, "twitch", viewer_count=-1)
    with pytest.raises(asyncpg.NotNullViolationError):
        await db.execute(
            "INSERT INTO channel_status (account_id, platform, is_online, updated_at)"
            " VALUES ($1, 'twitch', NULL, now())",
            account_id,
        )
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await insert_status(db, uuid.uuid4(), "twitch")


async def test_partial_index_on_is_online(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) AS predicate"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = 'channel_status'::regclass AND i.indpred IS NOT NULL"
    )
    assert [r["predicate"] for r in rows] == ["is_online"], rows
    index = rows[0]["relname"]
    # Boot recovery can use it.
    from lumio.channel_status.repository import GET_ALL_ONLINE_ACCOUNTS

    # The plan follows the table's statistics, which earlier tests leave behind (after one where
    # most channels were live, the primary key was the cheaper scan: CI failed once). Give the
    # table the shape the index is for, most channels offline, and read its statistics afresh.
    await db.execute(
        "INSERT INTO accounts (name) SELECT 'plan ' || n FROM generate_series(1, 500) n"
    )
    await db.execute(
        "INSERT INTO channel_status (account_id, platform, is_online, updated_at)"
        " SELECT id, 'twitch', false, now() FROM accounts"
    )
    await db.execute("ANALYZE channel_status")
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + GET_ALL_ONLINE_ACCOUNTS))
    assert index in plan, plan


# --- foreign keys -------------------------------------------------------------------------------

# (table, columns, referenced table, ON DELETE) as migration 0001 declares them.
EXPECTED_FOREIGN_KEYS = {
    ("channel_status", ("account_id",), "accounts", "CASCADE"),
    ("roles", ("account_id",), "accounts", "CASCADE"),
    ("account_members", ("account_id",), "accounts", "CASCADE"),
    ("account_members", ("user_id",), "users", "CASCADE"),
    ("account_members", ("role_id", "account_id"), "roles", "RESTRICT"),
    ("sessions", ("user_id",), "users", "CASCADE"),
    ("sessions", ("active_account_id",), "accounts", "SET NULL"),
    ("api_keys", ("user_id",), "users", "CASCADE"),
    ("api_keys", ("account_id",), "accounts", "CASCADE"),
}
ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


async def test_foreign_keys_are_declared(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        "SELECT c.conrelid::regclass::text AS tbl, c.confrelid::regclass::text AS ref,"
        " c.confdeltype::text AS on_delete,"
        " (SELECT array_agg(a.attname ORDER BY k.ord)"
        "    FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)"
        "    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS cols"
        " FROM pg_constraint c"
        " WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"
    )
    actual = {(r["tbl"], tuple(r["cols"]), r["ref"], ON_DELETE[r["on_delete"]]) for r in rows}
    assert actual >= EXPECTED_FOREIGN_KEYS, EXPECTED_FOREIGN_KEYS - actual


async def count_of(db: asyncpg.Pool, table: str, column: str, value: UUID) -> int:
    found: int = await db.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", value)
    return found


async def insert_session(db: asyncpg.Pool, user_id: UUID, account_id: UUID) -> UUID:
    session_id: UUID = await db.fetchval(
        "INSERT INTO sessions (token_hash, user_id, active_account_id, expires_at)"
        " VALUES ($1, $2, $3, now() + interval '1 hour') RETURNING id",
        uuid.uuid4().bytes,
        user_id,
        account_id,
    )
    return session_id


async def test_deleting_an_account_cascades(db: asyncpg.Pool, factory: Factory) -> None:
    account_id, owner = await factory.account()
    keep_id, keeper = await factory.account("Kept")
    await insert_status(db, account_id, "twitch")
    await insert_status(db, keep_id, "twitch")
    session_id = await insert_session(db, owner.user_id, account_id)

    await db.execute("DELETE FROM accounts WHERE id = $1", account_id)

    for table in ("channel_status", "roles", "account_members", "api_keys"):
        assert await count_of(db, table, "account_id", account_id) == 0, table
        assert await count_of(db, table, "account_id", keep_id) > 0, table
    # The session survives, with no active account; the user survives.
    assert (
        await db.fetchval("SELECT active_account_id FROM sessions WHERE id = $1", session_id)
        is None
    )
    assert await count_of(db, "users", "id", owner.user_id) == 1
    assert await count_of(db, "users", "id", keeper.user_id) == 1


async def test_deleting_a_user_cascades(db: asyncpg.Pool, factory: Factory) -> None:
    account_id, owner = await factory.account()
    session_id = await insert_session(db, owner.user_id, account_id)
    await db.execute("DELETE FROM users WHERE id = $1", owner.user_id)
    assert await count_of(db, "sessions", "id", session_id) == 0
    assert await count_of(db, "api_keys", "user_id", owner.user_id) == 0
    assert await count_of(db, "account_members", "user_id", owner.user_id) == 0
    # The account and its roles stay.
    assert await count_of(db, "accounts", "id", account_id) == 1
    assert await count_of(db, "roles", "account_id", account_id) == 4


async def test_a_role_in_use_cannot_be_deleted(db: asyncpg.Pool, factory: Factory) -> None:
    account_id, _ = await factory.account()
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute("DELETE FROM roles WHERE account_id = $1 AND name = 'owner'", account_id)
    # An unused one can.
    await db.execute("DELETE FROM roles WHERE account_id = $1 AND name = 'viewer'", account_id)


async def test_a_membership_cannot_use_another_accounts_role(
    db: asyncpg.Pool, factory: Factory
) -> None:
    account_id, _ = await factory.account()
    other_id, other = await factory.account()
    foreign_role = await db.fetchval(
        "SELECT id FROM roles WHERE account_id = $1 AND name = 'owner'", other_id
    )
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.execute(
            "INSERT INTO account_members (account_id, user_id, role_id) VALUES ($1, $2, $3)",
            account_id,
            other.user_id,
            foreign_role,
        )


# --- migrations ---------------------------------------------------------------------------------


def migration_heads(database_url: str) -> list[str]:
    heads: list[str] = list(
        ScriptDirectory.from_config(migrate.alembic_config(database_url)).get_heads()
    )
    return heads


async def test_the_test_database_is_at_the_single_head(db: asyncpg.Pool, database_url: str) -> None:
    heads = migration_heads(database_url)
    assert len(heads) == 1, heads
    assert await db.fetchval("SELECT version_num FROM alembic_version") == heads[0]


SCHEMA_QUERIES = (
    "SELECT table_name, column_name, data_type, is_nullable, column_default"
    " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "SELECT tablename, indexname, indexdef FROM pg_indexes"
    " WHERE schemaname = 'public' ORDER BY 1, 2",
)


async def schema_of(url: str) -> list[list[tuple[object, ...]]]:
    conn = await asyncpg.connect(url)
    try:
        return [[tuple(r) for r in await conn.fetch(q)] for q in SCHEMA_QUERIES]
    finally:
        await conn.close()


async def tables_of(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


@pytest.fixture
async def scratch_database(servers: tuple[str, str]) -> AsyncIterator[str]:
    admin_url = servers[0]
    name = f"lumio_scratch_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url_named(admin_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_migrations_downgrade_to_base_and_upgrade_again(
    scratch_database: str, database_url: str
) -> None:
    url = scratch_database
    # Alembic's env runs its own event loop: give it a thread without one.
    await asyncio.to_thread(migrate.upgrade, url)
    first = await schema_of(url)
    assert {"accounts", "users", "channel_status"} <= await tables_of(url)
    # The same schema as the database the rest of the suite runs on.
    assert first == await schema_of(database_url)

    await asyncio.to_thread(migrate.downgrade, url, "base")
    assert await tables_of(url) <= {"alembic_version"}
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetch("SELECT * FROM alembic_version") == []
    finally:
        await conn.close()

    await asyncio.to_thread(migrate.upgrade, url)
    assert await schema_of(url) == first
    # Upgrading an up-to-date database is a no-op.
    await asyncio.to_thread(migrate.upgrade, url)
    assert await schema_of(url) == first


async def test_each_migration_steps_down_and_up(scratch_database: str) -> None:
    url = scratch_database
    script = ScriptDirectory.from_config(migrate.alembic_config(url))
    revisions = [r.revision for r in script.walk_revisions("base", "heads")]
    revisions.reverse()  # oldest first
    for revision in revisions:
        await asyncio.to_thread(migrate.upgrade, url, revision)
        at = await schema_of(url)
        await asyncio.to_thread(migrate.downgrade, url, "-1")
        await asyncio.to_thread(migrate.upgrade, url, revision)
        assert await schema_of(url) == at, revision


async def test_outbox_rows_of_the_old_form_become_deliveries_on_upgrade(
    scratch_database: str,
) -> None:
    """0009 changes the outbox's columns: what was queued in the old form is not lost."""
    url = scratch_database
    await asyncio.to_thread(migrate.upgrade, url, "0008_webhooks")
    account, endpoint = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO accounts (id, name) VALUES ($1, 'old')", account)
        await conn.execute(
            "INSERT INTO webhook_endpoints (id, account_id, kind, url, events, secret)"
            " VALUES ($1, $2, 'standard', 'https://example.com/h', ARRAY['went_online'], '\\x00')",
            endpoint,
            account,
        )
        await conn.execute(
            "INSERT INTO webhook_outbox (account_ids, channel_keys, event_types, bodies)"
            " VALUES ($1, ARRAY['kick', 'kick'], ARRAY['went_online', 'went_offline'],"
            " ARRAY['{\"on\":1}', '{\"off\":1}'])",
            [account, account],
        )
        await asyncio.to_thread(migrate.upgrade, url)
        rows = await conn.fetch("SELECT endpoint_id, event_type, body FROM webhook_deliveries")
        assert [tuple(r) for r in rows] == [(endpoint, "went_online", '{"on":1}')]
        assert await conn.fetchval("SELECT count(*) FROM webhook_outbox") == 0
    finally:
        await conn.close()
