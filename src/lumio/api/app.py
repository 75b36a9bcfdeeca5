"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from lumio import __version__
from lumio.api import openapi
from lumio.api.docs import router as docs_router
from lumio.api.graphql.endpoint import GraphQLEndpoint
from lumio.api.routes import pages, v1
from lumio.auth.service import authenticate
from lumio.channel_status.endpoints import channel_status_route
from lumio.kit.middleware import BodySizeLimit, HeadLimits, NoStoreByDefault, RefuseUnstorableText
from lumio.kit.problems import DATABASE_DOWN, install_problem_handlers
from lumio.kit.resources import Resources, create_redis, open_resources, resources_of
from lumio.kit.settings import Settings
from lumio.live.hub import LiveHub


async def healthz(request: Request) -> Response:
    """Liveness and dependencies, for load balancers: 200 when PostgreSQL answers."""
    resources = resources_of(request)
    try:
        await resources.db.fetchval("SELECT 1")
    except DATABASE_DOWN:
        return Response(
            '{"status":"unavailable","database":false}', 503, media_type="application/json"
        )
    try:
        redis_ok = bool(await resources.redis.ping())
    except (RedisError, OSError):
        redis_ok = False
    body = f'{{"status":"ok","database":true,"redis":{str(redis_ok).lower()}}}'
    return Response(body, media_type="application/json")


def begin_shutdown(app: FastAPI) -> None:
    """The server is stopping: long-lived responses (live streams) end at their next step."""
    resources: Resources | None = getattr(app.state, "resources", None)
    if resources is not None:
        resources.shutting_down.set()


@contextlib.asynccontextmanager
async def live_hub(settings: Settings) -> AsyncIterator[LiveHub]:
    """The process's one pub/sub subscription for live streams, on a Redis client of its own so
    that no number of streams can take connections from the request pool."""
    redis = create_redis(settings.redis_url or "", settings.redis_timeout_seconds)
    hub = LiveHub(redis, settings.sse_max_per_credential, settings.sse_max_per_process)
    task = asyncio.create_task(hub.start())
    try:
        yield hub
    finally:
        hub.stop()
        await task
        await redis.aclose()


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings, authenticate) as resources, live_hub(settings) as hub:
            app.state.resources = resources
            app.state.live_hub = hub
            # Everything built so far lives as long as the process: keep it out of the
            # collector's generations, whose full passes otherwise stall requests for ~90 ms.
            gc.collect()
            gc.freeze()
            yield

    app = FastAPI(
        title="Lumio channel status",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    # Last added runs first: head limits, then text checks, then the body limit.
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(RefuseUnstorableText)
    app.add_middleware(
        HeadLimits, max_bytes=settings.http_max_header_bytes, max_headers=settings.http_max_headers
    )
    app.add_middleware(NoStoreByDefault)
    install_problem_handlers(app)
    app.add_route("/v1/channel-status", channel_status_route, ["GET"], include_in_schema=False)
    app.include_router(v1)
    app.include_router(pages)
    app.include_router(docs_router)
    openapi.install(app)
    app.add_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    graphql = GraphQLEndpoint(
        settings.graphql_max_depth, settings.graphql_max_tokens, settings.graphql_max_root_fields
    )
    app.add_route("/graphql", graphql.handle, methods=["GET", "POST"], include_in_schema=False)
    return app
