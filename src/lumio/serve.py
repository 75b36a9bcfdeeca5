"""Serving the API with uvicorn."""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from lumio.api.app import begin_shutdown, create_app
from lumio.http_limits import limited_protocol
from lumio.kit.settings import Settings


class Server(uvicorn.Server):
    """uvicorn, telling the app that it stops before it waits for open connections to end.

    Live streams (GET /v1/events) never end by themselves: without this, a shutdown would wait
    for every open dashboard, and cancelling them would cancel redis-py's pub/sub reader.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        begin_shutdown(self.app)
        await super().shutdown(sockets)


def uvicorn_server(settings: Settings, host: str, port: int) -> uvicorn.Server:
    app = create_app(settings)
    protocol = limited_protocol(
        settings.http_max_header_bytes,
        settings.http_max_headers,
        settings.http_header_timeout_seconds,
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
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_keep_alive=settings.http_keep_alive_seconds,
        limit_concurrency=settings.http_max_connections,
        access_log=False,
        log_level="info",
    )
    return Server(config, app)


async def serve_api(settings: Settings, host: str, port: int) -> None:
    await uvicorn_server(settings, host, port).serve()
