"""Serving the API with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Coroutine
from typing import Any

import uvicorn
from fastapi import FastAPI

from lumio.api.app import begin_shutdown, create_app
from lumio.db.pool import DbTimeouts
from lumio.db.schema import SchemaNotAtHead
from lumio.http_limits import limited_protocol
from lumio.kit.settings import Settings
from lumio.kit.startup import UNREACHABLE, schema_checked, wait_for_database


class Server(uvicorn.Server):
    """uvicorn, telling the app that it stops before it waits for open connections to end.

    Live streams (GET /v1/events) never end by themselves: without this, a shutdown would wait
    for every open dashboard, and cancelling them would cancel redis-py's pub/sub reader.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app
        # Set when PostgreSQL came back with a schema this release cannot serve.
        self.refused: SchemaNotAtHead | None = None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        begin_shutdown(self.app)
        await super().shutdown(sockets)


def uvicorn_server(settings: Settings, host: str, port: int) -> Server:
    app = create_app(settings)
    protocol = limited_protocol(
        settings.api.http_max_header_bytes,
        settings.api.http_max_headers,
        settings.api.http_header_timeout_seconds,
        settings.api.http_body_timeout_seconds,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=protocol,
        proxy_headers=True,
        # Only these peers may say who the client is (X-Forwarded-For): sign-in throttling
        # counts per client address.
        forwarded_allow_ips=settings.api.forwarded_allow_ips,
        timeout_keep_alive=settings.api.http_keep_alive_seconds,
        limit_concurrency=settings.api.http_max_connections,
        access_log=False,
        log_level="info",
    )
    return Server(config, app)


async def serve_api(settings: Settings, host: str, port: int) -> None:
    """Serve; a schema not at head is refused (SchemaNotAtHead) before or once PostgreSQL answers.

    With PostgreSQL unreachable the API listens all the same (``/healthz`` answers 503, the
    rest 503 problem+json) and serves as soon as it returns.
    """
    assert settings.db.url
    timeouts = DbTimeouts.of(settings)
    try:
        await schema_checked(settings.db.url, timeouts)
        watch = None
    except UNREACHABLE:
        watch = wait_for_database(
            settings.db.url, timeouts, settings.runtime.startup_retry_max.total_seconds()
        )
    server = uvicorn_server(settings, host, port)
    watcher = None if watch is None else asyncio.create_task(_watch(watch, server))
    try:
        await server.serve()
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    if server.refused is not None:
        raise server.refused


async def _watch(wait: Coroutine[Any, Any, None], server: Server) -> None:
    try:
        await wait
    except SchemaNotAtHead as error:
        server.refused = error
        server.should_exit = True
