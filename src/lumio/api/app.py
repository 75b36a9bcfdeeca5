"""The ASGI application factory."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from lumio import __version__
from lumio.api.graphql.endpoint import GraphQLEndpoint
from lumio.api.routes import pages, v1, webhooks
from lumio.auth.service import authenticate
from lumio.channel_status.endpoints import channel_status_route
from lumio.kit.middleware import BodySizeLimit
from lumio.kit.problems import DATABASE_DOWN, install_problem_handlers
from lumio.kit.resources import Resources, open_resources, resources_of
from lumio.kit.settings import Settings


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


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings, authenticate) as resources:
            app.state.resources = resources
            # Everything built so far lives as long as the process: keep it out of the
            # collector's generations, whose full passes otherwise stall requests for ~90 ms.
            gc.collect()
            gc.freeze()
            yield

    app = FastAPI(
        title="Lumio channel status",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    install_problem_handlers(app)
    app.add_route("/v1/channel-status", channel_status_route, ["GET"], include_in_schema=False)
    app.include_router(v1)
    app.include_router(pages)
    app.include_router(webhooks)
    app.add_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    graphql = GraphQLEndpoint(settings.graphql_max_depth, settings.graphql_max_tokens)
    app.add_route("/graphql", graphql.handle, methods=["GET", "POST"], include_in_schema=False)
    return app
