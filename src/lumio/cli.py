"""The `lumio` command: the processes and the admin commands.

Admin commands print the id or key they create as the last line of stdout, so scripts can rely
on ``lumio ... | tail -n 1``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar
from uuid import UUID

import asyncpg
import httpx
import typer
import uvloop
from pydantic import ValidationError
from redis.asyncio import Redis

from lumio.accounts import service as accounts
from lumio.db.pool import DbTimeouts, create_pool
from lumio.db.schema import SchemaNotAtHead, check_schema
from lumio.kit.auth_cache import AuthCache
from lumio.kit.errors import LumioError
from lumio.kit.logs import setup_logging
from lumio.kit.permissions import RoleName
from lumio.kit.settings import Settings, get_settings
from lumio.runtime import services

T = TypeVar("T")

app = typer.Typer(help="Lumio channel status.", no_args_is_help=True, add_completion=False)
users_app = typer.Typer(help="Users.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts.", no_args_is_help=True)
members_app = typer.Typer(help="Account members.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
channels_app = typer.Typer(help="Linked channels.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(accounts_app, name="accounts")
app.add_typer(members_app, name="members")
app.add_typer(keys_app, name="api-keys")
app.add_typer(channels_app, name="channels")


def _setup_logging() -> None:
    setup_logging(get_settings().logging)


def refuse(error: LumioError | SchemaNotAtHead, code: int = 2) -> NoReturn:
    """One line on stderr and an exit code, no traceback (a schema not at head, ...)."""
    typer.echo(f"error: {error.detail}", err=True)
    raise typer.Exit(code) from error


def with_database(work: Callable[[asyncpg.Pool, Settings], Awaitable[T]]) -> T:
    """Run ``work`` with a pool on the configured (or embedded) database; errors exit 1 with a message."""
    with services(get_settings()) as settings:
        assert settings.db.url

        async def run() -> T:
            pool = await create_pool(
                settings.db.url or "",
                min_size=1,
                max_size=2,
                timeouts=DbTimeouts.of(settings),
            )
            try:
                await check_schema(pool)
                return await work(pool, settings)
            finally:
                await pool.close()

        try:
            return asyncio.run(run())
        except SchemaNotAtHead as error:
            refuse(error)
        except LumioError as error:
            refuse(error, 1)


@app.command()
def migrate() -> None:
    """Apply the database migrations (the only command that changes the schema, with `lumio dev`
    on embedded servers); concurrent runs take turns on a PostgreSQL advisory lock."""
    with services(get_settings(), apply_migrations=True) as settings:
        typer.echo(f"migrated {settings.db.url}")


@users_app.command("create")
def users_create(
    email: str, password: Annotated[str, typer.Option(prompt=True, hide_input=True)]
) -> None:
    """Create a user who signs in with EMAIL and PASSWORD."""

    async def work(pool: asyncpg.Pool, _: Settings) -> UUID:
        return await accounts.create_user(pool, email, password)

    typer.echo(with_database(work))


@accounts_app.command("create")
def accounts_create(name: str, owner: Annotated[str, typer.Option(help="owner's email")]) -> None:
    """Create an account (with its four default roles) owned by an existing user."""

    async def work(pool: asyncpg.Pool, _: Settings) -> UUID:
        return await accounts.create_account(pool, name, owner)

    typer.echo(with_database(work))


@members_app.command("add")
def members_add(
    account_id: UUID,
    email: str,
    role: Annotated[RoleName, typer.Option(case_sensitive=False)] = RoleName.VIEWER,
) -> None:
    """Add a user to an account with a role (or change their role)."""

    from lumio.auth.service import invalidate_member
    from lumio.kit.auth_cache import AuthCache
    from lumio.kit.resources import create_redis

    async def work(pool: asyncpg.Pool, settings: Settings) -> UUID:
        user_id = await accounts.add_member(pool, account_id, email, role)
        # A role change takes effect at once in every running API process.
        redis = create_redis(settings.redis.url or "")
        try:
            await invalidate_member(pool, redis, AuthCache(0), account_id, user_id)
        finally:
            await redis.aclose()
        return user_id

    typer.echo(with_database(work))


@members_app.command("list")
def members_list(account_id: UUID) -> None:
    """The account's members, one per line: email, role, user id."""
    from lumio.members.service import list_members

    async def work(pool: asyncpg.Pool, _: Settings) -> int:
        members = await list_members(pool, account_id)
        for m in members:
            typer.echo(f"{m.email}\t{m.role.value}\t{m.user_id}")
        return len(members)

    with_database(work)


def _with_redis(work: Callable[[asyncpg.Pool, Redis, AuthCache], Awaitable[T]]) -> T:
    """Run ``work`` with a pool and Redis: member changes drop cached credentials everywhere."""
    from lumio.kit.resources import create_redis

    async def run(pool: asyncpg.Pool, settings: Settings) -> T:
        redis = create_redis(settings.redis.url or "")
        try:
            return await work(pool, redis, AuthCache(0))
        finally:
            await redis.aclose()

    return with_database(run)


@members_app.command("remove")
def members_remove(account_id: UUID, email: str) -> None:
    """Remove a member (the last Owner cannot be removed); prints the user id."""
    from lumio.members.service import by_email, remove_member

    async def work(pool: asyncpg.Pool, redis: Redis, cache: AuthCache) -> UUID:
        user_id = await by_email(pool, account_id, email)
        await remove_member(pool, redis, cache, account_id, None, user_id)
        return user_id

    typer.echo(_with_redis(work))


@members_app.command("set-role")
def members_set_role(
    account_id: UUID, email: str, role: Annotated[RoleName, typer.Argument(case_sensitive=False)]
) -> None:
    """Change a member's role (the last Owner cannot be demoted); prints the user id."""
    from lumio.members.service import by_email, change_role

    async def work(pool: asyncpg.Pool, redis: Redis, cache: AuthCache) -> UUID:
        user_id = await by_email(pool, account_id, email)
        await change_role(pool, redis, cache, account_id, None, user_id, role)
        return user_id

    typer.echo(_with_redis(work))


@keys_app.command("create")
def api_keys_create(
    user: Annotated[str, typer.Option(help="the user's email")],
    account: Annotated[UUID, typer.Option(help="the account the key is bound to")],
    name: Annotated[str, typer.Option()] = "",
) -> None:
    """Create an API key for a user on one account; the key is printed once, last."""
    from lumio.auth.service import create_api_key

    async def work(pool: asyncpg.Pool, settings: Settings) -> str:
        user_id = await accounts.user_id_by_email(pool, user)
        created = await create_api_key(pool, user_id, account, name, settings.api.api_keys_per_user)
        typer.echo(f"created API key {created.info.id} ({created.info.prefix}…)")
        return created.key

    typer.echo(with_database(work))


@keys_app.command("revoke")
def api_keys_revoke(key_id: UUID) -> None:
    """Revoke an API key; running API processes stop accepting it at once."""
    from lumio.auth.service import revoke_api_key
    from lumio.kit.auth_cache import AuthCache
    from lumio.kit.resources import create_redis

    async def work(pool: asyncpg.Pool, settings: Settings) -> UUID:
        redis = create_redis(settings.redis.url or "")
        try:
            await revoke_api_key(pool, redis, AuthCache(0), key_id, None)
        finally:
            await redis.aclose()
        return key_id

    typer.echo(with_database(work))


@channels_app.command("link")
def channels_link(account_id: UUID, platform: str, channel: str) -> None:
    """Link CHANNEL (login, handle, URL or id) on PLATFORM to the account; prints its id."""
    from lumio.channels.service import link_channel, parse_platform
    from lumio.kit.resources import create_redis

    async def work(pool: asyncpg.Pool, settings: Settings) -> str:
        redis = create_redis(settings.redis.url or "")
        try:
            async with httpx.AsyncClient(timeout=settings.platform_timeout.total_seconds()) as http:
                linked = await link_channel(
                    pool, redis, http, settings, account_id, parse_platform(platform), channel
                )
        finally:
            await redis.aclose()
        typer.echo(f"linked {linked.platform} channel {linked.display_name}")
        return linked.channel_id

    typer.echo(with_database(work))


@channels_app.command("unlink")
def channels_unlink(account_id: UUID, platform: str) -> None:
    """Unlink the account's channel on PLATFORM and remove its status."""
    from lumio.channels.service import parse_platform, unlink_channel
    from lumio.kit.resources import create_redis

    async def work(pool: asyncpg.Pool, settings: Settings) -> str:
        redis = create_redis(settings.redis.url or "")
        try:
            await unlink_channel(pool, redis, account_id, parse_platform(platform))
        finally:
            await redis.aclose()
        return platform

    typer.echo(with_database(work))


@channels_app.command("list")
def channels_list(account_id: UUID) -> None:
    """The account's linked channels, one per line: platform, channel id, name, last error."""
    from lumio.channels.repository import list_linked

    async def work(pool: asyncpg.Pool, _: Settings) -> int:
        linked = await list_linked(pool, account_id)
        for c in linked:
            typer.echo(f"{c.platform}\t{c.channel_id}\t{c.display_name}\t{c.last_error or ''}")
        return len(linked)

    with_database(work)


@app.command()
def worker() -> None:
    """Run the platform worker (any number of replicas, on any hosts)."""
    from lumio.detection.run import run_worker

    _setup_logging()
    with services(get_settings()) as settings:
        try:
            uvloop.run(run_worker(settings))
        except SchemaNotAtHead as error:
            refuse(error)


@app.command("spotify-worker")
def spotify_worker() -> None:
    """Run the Spotify now-playing poller (any number of replicas, on any hosts)."""
    from lumio.spotify.poller.run import run_spotify_worker, worker_settings

    _setup_logging()
    configured = get_settings()
    with services(configured) as resolved:
        try:
            settings = worker_settings(configured, resolved)
            uvloop.run(run_spotify_worker(settings))
        except LumioError as error:
            refuse(error)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
) -> None:
    """Run the API (REST, GraphQL) on the configured or embedded servers."""
    from lumio.serve import serve_api

    _setup_logging()
    with services(get_settings()) as settings:
        try:
            uvloop.run(serve_api(settings, host or settings.api.host, port or settings.api.port))
        except SchemaNotAtHead as error:
            refuse(error)


@app.command()
def dev(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    fakes: Annotated[
        bool | None,
        typer.Option(
            "--fakes/--no-fakes",
            envvar="LUMIO_DEV_FAKES",
            help="simulated platforms (default: on when no platform credentials are set)",
            show_default=False,
        ),
    ] = None,
    simulate_every: Annotated[
        float,
        typer.Option(
            envvar="LUMIO_DEV_SIMULATE_SECONDS",
            min=1.0,
            help="seconds between simulated changes (jittered by a third)",
        ),
    ] = 30.0,
) -> None:
    """Everything in one process on embedded defaults: the API, the platform worker, simulated
    platforms whose demo channels go live by themselves, and a demo account to sign in to."""
    from lumio.dev.run import run_dev

    _setup_logging()
    configured = get_settings()
    # Its own embedded servers are migrated; a database named by DATABASE_URL only by migrate.
    with services(configured, apply_migrations=not configured.db.url) as settings:
        host, port = host or settings.api.host, port or settings.api.port
        uvloop.run(run_dev(settings, host, port, fakes=fakes, simulate_every=simulate_every))


def main() -> None:
    try:
        get_settings()
    except ValidationError as error:
        # At start, before any command: name each variable to fix (the README's table).
        typer.echo(f"error: invalid settings in the environment: {error}", err=True)
        raise SystemExit(2) from None
    app()
