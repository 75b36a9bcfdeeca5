"""The admin CLI, run as a real `lumio` process against the test database and Redis."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import sysconfig
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest

from lumio.api.app import create_app
from lumio.kit.permissions import RoleName
from lumio.kit.settings import Settings
from tests.conftest import Factory

TABLES = ("users", "accounts", "roles", "account_members", "sessions", "api_keys")
PASSWORD = "a long enough password"


def lumio_command() -> list[str]:
    """The installed console script (``lumio = lumio.cli:main``) of this interpreter."""
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        script = folder / "lumio"
        if script.exists():
            return [str(script)]
    return [sys.executable, "-c", "from lumio.cli import main; main()"]


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        assert lines, f"no output; stderr: {self.stderr}"
        return lines[-1].strip()


@pytest.fixture
def lumio(database_url: str, redis_url: str, tmp_path: Path) -> Callable[..., Awaitable[Run]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUMIO_")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        LUMIO_DATA_DIR=str(tmp_path / "data"),
        # Keep typer's error boxes on one line each and free of colour codes.
        COLUMNS="250",
        TERM="dumb",
        NO_COLOR="1",
    )

    async def run(*args: str) -> Run:
        process = await asyncio.create_subprocess_exec(
            *lumio_command(),
            *args,
            cwd=tmp_path,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode is not None
        return Run(process.returncode, stdout.decode(), stderr.decode())

    return run


async def counts(db: asyncpg.Pool) -> dict[str, list[str]]:
    return {
        table: [
            r["row"] for r in await db.fetch(f"SELECT t::text AS row FROM {table} t ORDER BY 1")
        ]
        for table in TABLES
    }


def email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.com"


async def test_create_user_account_member_and_key_then_use_them(
    lumio: Callable[..., Awaitable[Run]],
    db: asyncpg.Pool,
    api: httpx.AsyncClient,
) -> None:
    owner_email, moderator_email = email("owner"), email("moderator")

    created = await lumio("users", "create", owner_email, "--password", PASSWORD)
    assert created.returncode == 0, created.stderr
    owner_id = UUID(created.last_line)
    assert await db.fetchval("SELECT email FROM users WHERE id = $1", owner_id) == owner_email

    account = await lumio("accounts", "create", "CLI streamer", "--owner", owner_email)
    assert account.returncode == 0, account.stderr
    account_id = UUID(account.last_line)
    assert await db.fetchval("SELECT name FROM accounts WHERE id = $1", account_id) == (
        "CLI streamer"
    )
    roles = await db.fetch(
        "SELECT name, permissions FROM roles WHERE account_id = $1 ORDER BY name", account_id
    )
    permissions = {r["name"]: set(r["permissions"]) for r in roles}
    assert set(permissions) == {"owner", "administrator", "moderator", "viewer"}
    spotify = {"spotify:read", "spotify:worker"}
    assert permissions["owner"] >= spotify
    assert permissions["administrator"] >= spotify
    assert permissions["moderator"] & spotify == {"spotify:read"}
    assert not permissions["viewer"] & spotify
    owner_role = await db.fetchval(
        "SELECT r.name FROM account_members m JOIN roles r ON r.id = m.role_id"
        " WHERE m.user_id = $1 AND m.account_id = $2",
        owner_id,
        account_id,
    )
    assert owner_role == "owner"

    moderator = await lumio("users", "create", moderator_email, "--password", PASSWORD)
    assert moderator.returncode == 0, moderator.stderr
    moderator_id = UUID(moderator.last_line)
    added = await lumio("members", "add", str(account_id), moderator_email, "--role", "moderator")
    assert added.returncode == 0, added.stderr
    assert UUID(added.last_line) == moderator_id
    role = await db.fetchval(
        "SELECT r.name FROM account_members m JOIN roles r ON r.id = m.role_id"
        " WHERE m.user_id = $1 AND m.account_id = $2",
        moderator_id,
        account_id,
    )
    assert role == "moderator"

    key_run = await lumio(
        "api-keys", "create", "--user", moderator_email, "--account", str(account_id),
        "--name", "from the cli",
    )  # fmt: skip
    assert key_run.returncode == 0, key_run.stderr
    key = key_run.last_line
    assert key.startswith("lumio_")
    row = await db.fetchrow(
        "SELECT id, name, user_id, account_id, key_hash FROM api_keys WHERE user_id = $1",
        moderator_id,
    )
    assert row is not None
    assert row["key_hash"] == hashlib.sha256(key.encode()).digest()
    assert row["name"] == "from the cli"
    assert row["account_id"] == account_id
    assert str(row["id"]) in key_run.stdout  # the key's id is printed for revocation

    # The key works against the API, with the moderator's permissions on that account.
    bearer = {"Authorization": f"Bearer {key}"}
    status = await api.get("/v1/channel-status", headers=bearer)
    assert status.status_code == 200, status.text
    assert status.json() == []
    me = await api.get("/v1/me", headers=bearer)
    assert me.json()["accounts"] == [
        {"id": str(account_id), "name": "CLI streamer", "role": "moderator", "active": True}
    ]
    start = await api.post("/v1/spotify/manual-connect", headers=bearer)
    assert start.status_code == 403

    # The owner signs in with the password given on the command line.
    login = await api.post("/v1/auth/login", json={"email": owner_email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["activeAccountId"] == str(account_id)

    # Revoked from the CLI: the running API refuses it at once (through Redis), although it
    # has the key in its credential cache.
    revoked = await lumio("api-keys", "revoke", str(row["id"]))
    assert revoked.returncode == 0, revoked.stderr
    assert UUID(revoked.last_line) == row["id"]
    assert await db.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1", row["id"])
    deadline = asyncio.get_running_loop().time() + 3
    while (await api.get("/v1/channel-status", headers=bearer)).status_code != 401:
        assert asyncio.get_running_loop().time() < deadline, "the revoked key still works"
        await asyncio.sleep(0.05)


async def test_members_add_changes_an_existing_role(
    lumio: Callable[..., Awaitable[Run]], db: asyncpg.Pool, factory: Factory
) -> None:
    account_id, owner = await factory.account()
    _, other = await factory.account()
    changed = await lumio("members", "add", str(account_id), other.email, "--role", "VIEWER")
    assert changed.returncode == 0, changed.stderr
    assert UUID(changed.last_line) == other.user_id
    again = await lumio("members", "add", str(account_id), other.email, "--role", "administrator")
    assert again.returncode == 0, again.stderr
    role = await db.fetchval(
        "SELECT r.name FROM account_members m JOIN roles r ON r.id = m.role_id"
        " WHERE m.user_id = $1 AND m.account_id = $2",
        other.user_id,
        account_id,
    )
    assert role == "administrator"
    assert owner.user_id != other.user_id


UNKNOWN = "00000000-0000-4000-8000-00000000abcd"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("users", "create", "not-an-email", "--password", PASSWORD), "not a valid email"),
        (("users", "create", "a@@b", "--password", PASSWORD), "not a valid email"),
        (("users", "create", "{new}", "--password", "short"), "8 to 1024 characters"),
        (("users", "create", "{owner}", "--password", PASSWORD), "exists already"),
        (("accounts", "create", "Name", "--owner", "nobody@example.com"), "no user"),
        (("accounts", "create", "Name", "--owner", "not-an-email"), "not a valid email"),
        (("accounts", "create", "   ", "--owner", "{owner}"), "1 to 200 characters"),
        (("members", "add", "{account}", "{other}", "--role", "superuser"), "--role"),
        (("members", "add", "not-a-uuid", "{other}", "--role", "moderator"), "account_id"),
        (("members", "add", UNKNOWN, "{other}", "--role", "moderator"), "no account"),
        (("members", "add", "{account}", "nobody@example.com", "--role", "viewer"), "no user"),
        (("api-keys", "create", "--user", "{owner}", "--account", "not-a-uuid"), "--account"),
        (("api-keys", "create", "--user", "{other}", "--account", "{account}"), "not a member"),
        (
            ("api-keys", "create", "--user", "nobody@example.com", "--account", "{account}"),
            "no user",
        ),
        (("api-keys", "create", "--account", "{account}"), "--user"),
        (("api-keys", "revoke", "not-a-uuid"), "key_id"),
        (("api-keys", "revoke", UNKNOWN), "no such API key"),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(value[:2]),
)
async def test_bad_input_exits_non_zero_and_creates_nothing(
    lumio: Callable[..., Awaitable[Run]],
    db: asyncpg.Pool,
    factory: Factory,
    args: tuple[str, ...],
    message: str,
) -> None:
    account_id, owner = await factory.account()
    _, other = await factory.account()
    values = {
        "{owner}": owner.email,
        "{other}": other.email,
        "{account}": str(account_id),
        "{new}": email("new"),
    }
    before = await counts(db)
    run = await lumio(*(values.get(arg, arg) for arg in args))
    assert run.returncode != 0, run.stdout
    assert message.lower() in run.stderr.lower(), run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout.strip() == ""
    assert await counts(db) == before


async def test_users_create_without_a_password_does_not_hang(
    lumio: Callable[..., Awaitable[Run]], db: asyncpg.Pool
) -> None:
    before = await counts(db)
    run = await lumio("users", "create", email("prompt"))
    assert run.returncode != 0
    assert await counts(db) == before


async def test_members_list_set_role_and_remove(
    lumio: Callable[..., Awaitable[Run]], db: asyncpg.Pool, factory: Factory
) -> None:
    from lumio.kit.permissions import RoleName

    account_id, owner = await factory.account()
    moderator = await factory.member(account_id, RoleName.MODERATOR)
    listed = await lumio("members", "list", str(account_id))
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split("\t")[:2] for line in listed.stdout.strip().splitlines()) == sorted(
        [[owner.email, "owner"], [moderator.email, "moderator"]]
    )
    changed = await lumio("members", "set-role", str(account_id), moderator.email, "viewer")
    assert changed.returncode == 0, changed.stderr
    assert UUID(changed.last_line) == moderator.user_id
    last_owner = await lumio("members", "set-role", str(account_id), owner.email, "viewer")
    assert last_owner.returncode == 1 and "last Owner" in last_owner.stderr
    assert (await lumio("members", "remove", str(account_id), owner.email)).returncode == 1
    removed = await lumio("members", "remove", str(account_id), moderator.email)
    assert removed.returncode == 0, removed.stderr
    members = await db.fetchval(
        "SELECT count(*) FROM account_members WHERE account_id = $1", account_id
    )
    assert members == 1
    unknown = await lumio("members", "remove", str(account_id), "nobody@example.com")
    assert unknown.returncode == 1 and "not a member" in unknown.stderr


async def test_members_add_role_change_reaches_cached_principals_at_once(
    lumio: Callable[..., Awaitable[Run]], settings: Settings, factory: Factory
) -> None:
    """Issue 10: a role change used to wait out the credential cache; now it is immediate."""
    account_id, _ = await factory.account()
    moderator = await factory.member(account_id, RoleName.MODERATOR)
    slow_cache = settings.updated({"api": {"auth_cache": timedelta(seconds=300)}})
    application = create_app(slow_cache)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://lumio.test") as api:
            assert (
                await api.get("/v1/channel-status", headers=moderator.bearer)
            ).status_code == 200
            changed = await lumio(
                "members", "add", str(account_id), moderator.email, "--role", "viewer"
            )
            assert changed.returncode == 0, changed.stderr
            deadline = asyncio.get_running_loop().time() + 3
            while (
                await api.get("/v1/channel-status", headers=moderator.bearer)
            ).status_code != 403:
                assert asyncio.get_running_loop().time() < deadline, "the old role still works"
                await asyncio.sleep(0.05)
