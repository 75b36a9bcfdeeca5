"""The benchmark's in-run ceiling: a bare Starlette route with the API's own query and driver.

Same asyncpg pool (``lumio.db.pool.create_pool``, same size), same query
(``lumio.channel_status.repository.GET_STATUS``), orjson, uvicorn with uvloop and httptools;
no authentication, no FastAPI, no validation. The account comes from the path:
``GET /status/{account_id}``.

    DATABASE_URL=postgresql://... python -m bench.baseline_app --port 8101
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# See api_bench.py for the ignores.
from lumio.channel_status.repository import GET_STATUS
from lumio.db.pool import create_pool

JSON = "application/json"


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def status(request: Request) -> Response:
    account_id: UUID = request.path_params["account_id"]
    rows = await _pool(request).fetch(GET_STATUS, account_id)
    body = orjson.dumps(
        [
            {
                "platform": row[0],
                "isOnline": row[1],
                "streamTitle": row[2],
                "category": row[3],
                "viewerCount": row[4],
                "startedAt": row[5],
                "updatedAt": row[6],
            }
            for row in rows
        ]
    )
    return Response(body, media_type=JSON)


async def healthz(request: Request) -> Response:
    await _pool(request).fetchval("SELECT 1")
    return Response(b'{"status":"ok"}', media_type=JSON)


def create_app(database_url: str, pool_min: int, pool_max: int) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await create_pool(database_url, min_size=pool_min, max_size=pool_max)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    return Starlette(
        routes=[
            Route("/status/{account_id:uuid}", status, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    database_url = os.environ["DATABASE_URL"]
    # The same defaults as the API's LUMIO_DB_POOL_MIN / LUMIO_DB_POOL_MAX.
    pool_min = int(os.environ.get("LUMIO_DB_POOL_MIN", "2"))
    pool_max = int(os.environ.get("LUMIO_DB_POOL_MAX", "10"))
    uvicorn.run(
        create_app(database_url, pool_min, pool_max),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
