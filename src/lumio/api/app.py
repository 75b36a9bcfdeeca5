"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from lumio import __version__
from lumio.api import openapi
from lumio.api.docs import router as docs_router
from lumio.api.graphql.endpoint import GraphQLEndpoint
from lumio.api.hot import HotRoutes, LumioAPI
from lumio.api.routes import pages, v1, webhooks
from lumio.auth.service import authenticate
from lumio.auth.tasks import SessionSweeper
from lumio.channel_status.endpoints import channel_status_route
from lumio.kit.health import answer_within
from lumio.kit.loops import running
from lumio.kit.middleware import RequestChecks, RequestGuards
from lumio.kit.problems import DATABASE_DOWN, install_problem_handlers
from lumio.kit.resources import Resources, create_redis, open_resources, resources_of
from lumio.kit.settings import Settings
from lumio.live.hub import LiveHub


async def healthz(request: Request) -> Response:
    """Liveness and dependencies, for load balancers: 200 when PostgreSQL answers.

    Answers within ``LUMIO_HEALTH_TIMEOUT_SECONDS`` whatever the database does (a black-holed
    server would otherwise hold the probe for the connect timeout).
    """
    resources = resources_of(request)
    timeout = resources.settings.runtime.health_timeout.total_seconds()
    try:
        await answer_within(resources.db.fetchval("SELECT 1", timeout=timeout), timeout)
    except DATABASE_DOWN:
        return Response(
            '{"status":"unavailable","database":false}', 503, media_type="application/json"
        )
    try:
        redis_ok = await answer_within(_ping(resources.redis), timeout)
    except (RedisError, OSError, TimeoutError):
        redis_ok = False
    body = f'{{"status":"ok","database":true,"redis":{str(redis_ok).lower()}}}'
    return Response(body, media_type="application/json")


async def _ping(redis: Redis) -> bool:
    return bool(await redis.ping())


def begin_shutdown(app: FastAPI) -> None:
    """The server is stopping: long-lived responses (live streams) end at their next step."""
    resources: Resources | None = getattr(app.state, "resources", None)
    if resources is not None:
        resources.shutting_down.set()
    hub: LiveHub | None = getattr(app.state, "live_hub", None)
    if hub is not None:
        hub.wake_all()  # a quiet stream would otherwise notice only at its next poll


@contextlib.asynccontextmanager
async def live_hub(settings: Settings) -> AsyncIterator[LiveHub]:
    """The process's one pub/sub subscription for live streams, on a Redis client of its own so
    that no number of streams can take connections from the request pool."""
    redis = create_redis(settings.redis.url or "", settings.redis.timeout)
    hub = LiveHub(redis, settings.api.sse_max_per_credential, settings.api.sse_max_per_process)
    task = asyncio.create_task(hub.start())
    try:
        yield hub
    finally:
        hub.stop()
        await task
        await redis.aclose()


# The collector's thresholds once the start-up objects are frozen. With the defaults (700, 10, 10)
# a full pass came every 3-5 s under load (7-17 ms each, all requests stalled; the frozen objects
# no longer count as old ones, so the "25 % more old objects" rule is always met); with these, a
# young pass still comes every few requests (it walks only what is alive then) and no full pass
# came in 80 s at 2,000 req/s (bench.gc_probe with bench.api_bench, issue 15).
GC_THRESHOLDS = (20_000, 20, 100)


def create_app(settings: Settings) -> LumioAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings, authenticate) as resources, live_hub(settings) as hub:
            app.state.resources = resources
            app.state.live_hub = hub
            # Everything built so far lives as long as the process: keep it out of the
            # collector's generations, whose full passes otherwise stall requests for ~90 ms.
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            async with running(SessionSweeper(resources.db)) as sweeper:
                app.state.session_sweeper = sweeper
                yield

    app = LumioAPI(
        title="Lumio channel status",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    checks = RequestChecks(
        settings.api.max_body_bytes,
        settings.api.http_max_header_bytes,
        settings.api.http_max_headers,
    )
    app.add_middleware(RequestGuards, checks=checks)
    install_problem_handlers(app)
    app.add_route("/v1/channel-status", channel_status_route, ["GET"], include_in_schema=False)
    # Ahead of the routers: matching a path walks the routes in order, and a path added last
    # paid ~10 % of a GraphQL request's CPU for walking every REST route first (issue 15).
    graphql = GraphQLEndpoint(
        settings.api.graphql_max_depth,
        settings.api.graphql_max_tokens,
        settings.api.graphql_max_root_fields,
    )
    app.add_route("/graphql", graphql.handle, methods=["GET", "POST"], include_in_schema=False)
    app.hot_routes = hot_routes(checks, graphql)
    app.include_router(v1)
    app.include_router(pages)
    app.include_router(docs_router)
    openapi.install(app)
    app.include_router(webhooks)
    app.add_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    return app


def hot_routes(checks: RequestChecks, graphql: GraphQLEndpoint) -> HotRoutes:
    """The two routes every client polls, answered ahead of FastAPI's layers (lumio.api.hot)
    with the middleware's own checks; their routes above still answer HEAD, 405 and a mounted
    app."""
    hot = HotRoutes(checks)
    hot.add("/v1/channel-status", channel_status_route, ("GET",))
    hot.add("/graphql", graphql.handle, ("GET", "POST"))
    return hot
