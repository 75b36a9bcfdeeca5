"""Every REST router of the system, in one place."""

from __future__ import annotations

from fastapi import APIRouter

from lumio.accounts.endpoints import router as accounts_router
from lumio.auth.endpoints import router as auth_router
from lumio.budgets.endpoints import router as budgets_router
from lumio.channel_status.endpoints import router as channel_status_router
from lumio.channels.endpoints import router as channels_router
from lumio.dashboard.endpoints import router as dashboard_router
from lumio.history.endpoints import router as history_router
from lumio.live.endpoints import router as live_router
from lumio.manual_connect.endpoints import router as manual_connect_router
from lumio.members.endpoints import router as members_router
from lumio.push.endpoints import router as push_router
from lumio.spotify.endpoints import router as spotify_router
from lumio.webhooks.endpoints import router as webhooks_router

v1 = APIRouter(prefix="/v1")
v1.include_router(channel_status_router)
v1.include_router(manual_connect_router)
v1.include_router(channels_router)
v1.include_router(auth_router)
v1.include_router(live_router)
v1.include_router(spotify_router)
v1.include_router(history_router)
v1.include_router(members_router)
v1.include_router(accounts_router)
v1.include_router(webhooks_router)
v1.include_router(budgets_router)

# Outside /v1 and the OpenAPI document: the dashboard page and its assets.
pages = APIRouter(include_in_schema=False)
pages.include_router(dashboard_router)

# Outside /v1 and without user auth: the platforms' push callbacks, verified by signature.
webhooks = APIRouter(include_in_schema=False)
webhooks.include_router(push_router)
