"""A real `lumio api` process on a loopback port, for tests that need a real HTTP server
(Server-Sent Events, the dashboard in a browser): started, stopped and restarted like in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from lumio.dev.fakes.server import free_port

LUMIO = [sys.executable, "-c", "from lumio.cli import main; main()"]


class ApiProcess:
    def __init__(
        self,
        database_url: str,
        redis_url: str,
        log_path: Path,
        port: int = 0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.log_path = log_path
        self.port = port or free_port()
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> str:
        env = (
            os.environ | self.env | {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}
        )
        command = [*LUMIO, "api", "--host", "127.0.0.1", "--port", str(self.port)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        self._wait_ready(timeout)
        return self.base_url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"lumio api exited at start:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"lumio api did not answer within {timeout} s")

    def stop(self, timeout: float = 15.0) -> float:
        """SIGTERM, as a process manager would; returns how long the process took to exit."""
        if self.process is None:
            return 0.0
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.process = None
        return time.monotonic() - started

    def __enter__(self) -> ApiProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
