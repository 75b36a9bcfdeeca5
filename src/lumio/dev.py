"""`lumio dev`: the API on embedded defaults, with a demo account ready to sign in to."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from lumio.accounts import repository as accounts_repository
from lumio.accounts import service as accounts
from lumio.auth.service import create_api_key
from lumio.channel_status import repository as channel_status
from lumio.channel_status.schemas import OfflineWrite, OnlineWrite, Platform
from lumio.db.pool import create_pool
from lumio.serve import uvicorn_server
from lumio.settings import Settings

log = logging.getLogger(__name__)

DEMO_EMAIL = "demo@lumio.local"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a local demo account, printed on purpose
DEMO_ACCOUNT = "Demo streamer"


@dataclass(frozen=True)
class Demo:
    account_id: UUID
    api_key: str


async def ensure_demo(pool: asyncpg.Pool) -> Demo:
    """Create (once) the demo user and account, and a fresh API key for this run."""
    found = await accounts_repository.user_with_hash(pool, DEMO_EMAIL)
    if found is None:
        user_id = await accounts.create_user(pool, DEMO_EMAIL, DEMO_PASSWORD)
        account_id = await accounts.create_account(pool, DEMO_ACCOUNT, DEMO_EMAIL)
        now = datetime.now(UTC)
        await channel_status.set_online(
            pool,
            OnlineWrite(
                account_id, Platform.TWITCH, "Demo stream: building Lumio", "Software and Game Development",
                42, now - timedelta(minutes=17), now,
            ),
        )  # fmt: skip
        await channel_status.set_offline(pool, OfflineWrite(account_id, Platform.YOUTUBE, now))
    else:
        user_id = found[0].id
        account_id = (await accounts_repository.memberships(pool, user_id))[0].account_id
    key = await create_api_key(pool, user_id, account_id, "lumio dev")
    return Demo(account_id, key.key)


async def run_dev(settings: Settings, host: str, port: int) -> None:
    assert settings.database_url
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        demo = await ensure_demo(pool)
    finally:
        await pool.close()
    base = f"http://{host}:{port}"
    print(
        f"""
Lumio is running on embedded PostgreSQL and Redis (data in {settings.data_dir}/).

  Sign in:   POST {base}/v1/auth/login  {{"email": "{DEMO_EMAIL}", "password": "{DEMO_PASSWORD}"}}
  API key:   {demo.api_key}
  Try:       curl -H 'Authorization: Bearer {demo.api_key}' {base}/v1/channel-status
  GraphQL:   {base}/graphql    OpenAPI: {base}/openapi.json    Docs: {base}/docs
""",
        flush=True,
    )
    await uvicorn_server(settings, host, port).serve()
