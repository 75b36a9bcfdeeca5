"""The plumbing the benchmarks share: signals, child processes, /proc figures, the bench database.

Every benchmark starts servers and a database of its own and must leave nothing behind, Ctrl-C
and SIGKILL included; one copy of that machinery keeps the scripts' cleanup alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import asyncpg

from lumio.db.migrate import upgrade
from lumio.db.pool import database_url_named

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent

R = TypeVar("R")


class BenchError(Exception):
    """A failure the benchmark explains in one message (no traceback)."""


# --- signals ------------------------------------------------------------------------------------


def interrupt(signum: int, frame: FrameType | None) -> None:
    """A signal handler that unwinds like Ctrl-C, so that every ``finally`` cleanup runs."""
    raise KeyboardInterrupt(f"signal {signum}")


def catch_termination() -> None:
    """Ctrl-C, SIGTERM and SIGHUP unwind as KeyboardInterrupt, so that every cleanup runs.

    SIGINT too: a shell starts background jobs with it ignored, and the benchmark must stay
    interruptible there.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def ignore_interrupts() -> None:
    """While cleaning up, a second Ctrl-C must not leave processes or the database behind."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def die_with_parent() -> None:
    """In a child, before exec: get SIGTERM if the benchmark dies without cleaning up (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_guarded(measure: Callable[[], R], cleaned: str) -> R | int:
    """Run ``measure`` interruptibly; an interrupt or a BenchError becomes one line and 130 / 2.

    ``cleaned`` says what the unwinding stopped and dropped, e.g. "servers stopped, ...".
    """
    catch_termination()
    try:
        return measure()
    except KeyboardInterrupt:
        print(f"\ninterrupted: {cleaned}", file=sys.stderr)
        return 130
    except BenchError as error:
        print(f"\nerror: {error}\n({cleaned})", file=sys.stderr)
        return 2


def exit_status(checks: list[dict[str, Any]], fail_on_miss: bool) -> int:
    """1 when ``--fail-on-miss`` was given and a check failed, so CI can gate on the targets."""
    return 1 if fail_on_miss and not all(check["pass"] for check in checks) else 0


# --- child processes ----------------------------------------------------------------------------


def spawn(
    command: list[str], env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start a child in a session of its own, killed with the benchmark.

    Its own session: Ctrl-C in the terminal reaches only the benchmark, which then stops its
    children in order. Start it outside any event loop: with no other thread, ``preexec_fn`` is
    safe.
    """
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent,
        **kwargs,
    )


def spawn_logged(
    command: list[str], env: dict[str, str], log_path: Path, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """``spawn`` with stdout and stderr into ``log_path``, whose tail explains a failed start."""
    with log_path.open("wb") as log:
        return spawn(command, env, stdout=log, stderr=subprocess.STDOUT, **kwargs)


@dataclass
class Child:
    """A started process and its log; ``tail_lines`` of the log go into error messages."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    tail_lines: int = field(default=30, kw_only=True)

    def log_tail(self, lines: int | None = None) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-(lines or self.tail_lines) :])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self, timeout: float) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


ChildT = TypeVar("ChildT", bound=Child)


class Children:
    """The processes the benchmark started; all stopped on exit (SIGTERM, then SIGKILL).

    With ``shield``, interrupts are ignored from exit on, so a second Ctrl-C cannot cut the
    cleanup short.
    """

    def __init__(self, stop_timeout: float, *, shield: bool = True) -> None:
        self.stop_timeout = stop_timeout
        self.shield = shield
        self.started: list[Child] = []

    def add(self, child: ChildT) -> ChildT:
        self.started.append(child)
        return child

    def stop(self, child: Child) -> int:
        return child.stop(self.stop_timeout)

    def stop_all(self) -> None:
        # SIGTERM to all first: they shut down side by side, not one timeout after another.
        for child in reversed(self.started):
            if child.process.poll() is None:
                child.process.terminate()
        for child in reversed(self.started):
            self.stop(child)
        self.started.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.shield:
            ignore_interrupts()
        self.stop_all()


# --- /proc figures ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command: state is field 3, utime field 14, stime field 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> tuple[int, int]:
    """The machine's (all, stolen) CPU ticks so far (Linux /proc/stat; zeros elsewhere).

    Steal is time the hypervisor gave this VM's CPUs to others: a round measured while it is
    high ran on a slower machine than its neighbours, whatever the code does."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields[:8]), fields[7] if len(fields) > 7 else 0


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    ticks = after[0] - before[0]
    return 100.0 * (after[1] - before[1]) / ticks if ticks > 0 else 0.0


def memory_mb(pid: int) -> dict[str, float]:
    """Resident set now (VmRSS) and its peak so far (VmHWM), in MB; empty when unreadable."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB$", text, re.MULTILINE))
    return {key: int(value) / 1024 for key, value in found.items()}


def pid_alive(pid: int) -> bool:
    """Whether a process exists (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the bench database -------------------------------------------------------------------------


LOCAL_HOSTS = frozenset({None, "", "127.0.0.1", "localhost", "::1"})


async def drop_stale_databases(conn: asyncpg.Connection, prefix: str) -> list[str]:
    """Drop the databases of earlier runs on this machine that were killed (SIGKILL) midway.

    A database is named ``{prefix}{pid}_{random}`` after its run; it is stale when that process
    is gone.
    """
    stale = []
    rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%")
    for row in rows:
        pid_text, _, rest = row["datname"].removeprefix(prefix).partition("_")
        if rest and pid_text.isdigit() and not pid_alive(int(pid_text)):
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
            stale.append(row["datname"])
    return stale


async def create_database(
    admin_url: str,
    name: str,
    *,
    stale_prefix: str | None = None,
    command_timeout: float | None = None,
) -> list[str]:
    """Create ``name``; with ``stale_prefix``, first drop killed runs' databases (returned)."""
    conn = await asyncpg.connect(admin_url, timeout=10, command_timeout=command_timeout)
    try:
        # Process ids say nothing about runs on other machines: only tidy a local server.
        local = urlsplit(admin_url).hostname in LOCAL_HOSTS
        stale = await drop_stale_databases(conn, stale_prefix) if stale_prefix and local else []
        await conn.execute(f'CREATE DATABASE "{name}"')
        return stale
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str, *, command_timeout: float | None = None) -> None:
    """Drop ``name``, closing whatever connections a killed child left open."""
    conn = await asyncpg.connect(admin_url, timeout=10, command_timeout=command_timeout)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def bench_database(
    admin_url: str,
    prefix: str,
    *,
    command_timeout: float,
    migrate: bool = False,
    shield: bool = False,
) -> Iterator[str]:
    """A fresh database ``{prefix}{pid}_{random}`` on the server of ``admin_url``, dropped on exit.

    ``migrate``: upgraded to the latest schema before use. ``shield``: interrupts are ignored
    from the drop on, so a second Ctrl-C cannot leave the database behind.
    """
    name = f"{prefix}{os.getpid()}_{uuid.uuid4().hex[:6]}"
    stale = asyncio.run(
        create_database(admin_url, name, stale_prefix=prefix, command_timeout=command_timeout)
    )
    if stale:
        print(f"dropped databases left by killed runs: {', '.join(stale)}", flush=True)
    try:
        url = database_url_named(admin_url, name)
        if migrate:
            upgrade(url)
        yield url
    finally:
        if shield:
            ignore_interrupts()
        asyncio.run(drop_database(admin_url, name, command_timeout=command_timeout))
