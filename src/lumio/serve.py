"""Serving the API with uvicorn."""

from __future__ import annotations

import uvicorn

from lumio.api.app import create_app
from lumio.settings import Settings


def uvicorn_server(settings: Settings, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        access_log=False,
        log_level="info",
    )
    return uvicorn.Server(config)


async def serve_api(settings: Settings, host: str, port: int) -> None:
    await uvicorn_server(settings, host, port).serve()
