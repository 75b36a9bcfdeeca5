"""A TCP proxy that fails on command, in front of PostgreSQL or Redis (the fault suite).

Runs its own event loop in a thread, so processes and the test's own loop see it as a server.
``refuse()`` closes the listening socket and every connection (connect: ECONNREFUSED);
``blackhole()`` keeps accepting but delivers nothing either way, on new and established
connections alike (a server or network that went silent), and its end resets the connections
that lived through it (as timeouts on either side would: nothing held is delivered late);
``cut()`` drops every established connection once; ``restore()`` forwards again on the same
port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lumio.dev.fakes.server import free_port

T = TypeVar("T")


class FaultProxy:
    def __init__(self, target_url: str) -> None:
        self.target_url = target_url
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._open = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        """The target's URL with this proxy (TCP on loopback) in place of its server."""
        parts = urlsplit(self.target_url)
        if parts.scheme == "unix":
            query = dict(parse_qsl(parts.query))
            return f"redis://127.0.0.1:{self.port}/{query.get('db', '0')}"
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        kept = [(k, v) for k, v in parse_qsl(parts.query) if k != "host"]
        netloc = f"{userinfo}127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(kept)))

    async def _connect_target(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(self.target_url)
        if parts.scheme == "unix":
            return await asyncio.open_unix_connection(parts.path)
        socket_dir = dict(parse_qsl(parts.query)).get("host")
        if socket_dir:
            return await asyncio.open_unix_connection(f"{socket_dir}/.s.PGSQL.{parts.port or 5432}")
        assert parts.hostname, self.target_url
        return await asyncio.open_connection(parts.hostname, parts.port or 5432)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._loop.call_soon_threadsafe(self._open.set)
        self._call(self._listen())
        return self

    def __exit__(self, *_: object) -> None:
        self._call(self._close_all(stop_listening=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    # --- the faults ---

    def refuse(self) -> None:
        self._call(self._close_all(stop_listening=True))

    def blackhole(self) -> None:
        self._call(self._set_open(False))

    def cut(self) -> None:
        self._call(self._close_all(stop_listening=False))

    def restore(self) -> None:
        self._call(self._close_all(stop_listening=False))
        self._call(self._set_open(True))
        if self._server is None:
            self._call(self._listen())

    # --- the proxy ---

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _set_open(self, value: bool) -> None:
        (self._open.set if value else self._open.clear)()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def _close_all(self, *, stop_listening: bool) -> None:
        if stop_listening and self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self._open.wait()
        if writer.transport.is_closing():
            # Accepted while black-holed and reset on restore: what the client sent meanwhile
            # (still in the reader) must not reach the server, as through a real black hole.
            # Forwarding it delivered a Redis PUBLISH the client had given up on and sent
            # again: a duplicate event (tests/faults/test_outages.py, once in CI).
            return
        try:
            up_reader, up_writer = await self._connect_target()
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for end in (writer, up_writer):
            self._writers.discard(end)
            end.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            # Silent: held, not delivered, until restored (or until either side gives up).
            await self._open.wait()
            writer.write(data)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        writer.transport.abort()
