"""Running a fake (any ASGI app) on a loopback port, in a thread, for tests and `lumio dev`."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FakeServer:
    """Serve ``app`` on 127.0.0.1 in a background thread with its own event loop.

    Use as a context manager: ``with FakeServer(app) as base_url: ...``.
    """

    def __init__(self, app: ASGIApp, port: int = 0, lifespan: Literal["on", "off"] = "off") -> None:
        self.app = app
        self.port = port or free_port()
        # "on" for a real Lumio API (its resources open in the server's own loop).
        self.lifespan = lifespan
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan=self.lifespan
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"fake server did not start on port {self.port}")
            time.sleep(0.01)
        return self.base_url

    async def _serve(self) -> None:
        assert self._server is not None
        await self._server.serve()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
