"""Every REST router of the system, in one place."""

from __future__ import annotations

from fastapi import APIRouter

from lumio.auth.endpoints import router as auth_router
from lumio.channel_status.endpoints import router as channel_status_router
from lumio.channels.endpoints import router as channels_router
from lumio.manual_connect.endpoints import router as manual_connect_router

v1 = APIRouter(prefix="/v1")
v1.include_router(channel_status_router)
v1.include_router(manual_connect_router)
v1.include_router(channels_router)
v1.include_router(auth_router)
