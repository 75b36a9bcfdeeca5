"""A lean HTTP/1.1 keep-alive load generator: the fallback when ``wrk`` is not available.

It runs as a process of its own (``python -m bench.loadgen CONFIG.json``) on uvloop: each
connection sends one request, waits for the whole response, records the time it took and sends
the next one, closed-loop like wrk. Requests are picked at random per request from the raw
requests in the config. It prints one JSON object (the same fields as the wrk runner).

Only what the benchmark's servers send is understood: responses with a Content-Length.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any, cast

import uvloop

_CONTENT_LENGTH = b"\r\ncontent-length:"


def percentile(sorted_values: list[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0
    rank = max(0, min(len(sorted_values) - 1, int(len(sorted_values) * pct / 100.0 + 0.5) - 1))
    return sorted_values[rank]


class Run:
    def __init__(self, requests: list[bytes], duration: float, seed: int) -> None:
        self.requests = requests
        self.rng = random.Random(seed)
        self.start = time.perf_counter_ns()
        self.deadline = self.start + int(duration * 1e9)
        self.latencies: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.socket_errors = 0
        self.open = 0
        self.finished = asyncio.get_running_loop().create_future()

    def request(self) -> bytes:
        return self.requests[self.rng.randrange(len(self.requests))]

    def record(self, started: int, finished: int, status: int) -> None:
        if finished <= self.deadline:
            self.latencies.append(finished - started)
            self.statuses[status] += 1

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.finished.done():
            self.finished.set_result(None)


class Connection(asyncio.Protocol):
    def __init__(self, run: Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.expected = -1
        self.status = 0
        self.sent = 0
        self.done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport implements asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.run.open += 1
        self.send_next()

    def send_next(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter_ns()
        if self.sent >= self.run.deadline:
            self.done = True
            self.transport.close()
            return
        self.transport.write(self.run.request())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.expected < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            at = head.find(_CONTENT_LENGTH)
            if not head.startswith(b"http/1.1 ") or at < 0:
                self.fail()
                return
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + len(_CONTENT_LENGTH) : line_end if line_end >= 0 else None])
            self.status = int(head[9:12])
            self.expected = end + 4 + length
        if len(self.buffer) < self.expected:
            return
        self.run.record(self.sent, time.perf_counter_ns(), self.status)
        del self.buffer[: self.expected]
        self.expected = -1
        self.send_next()

    def fail(self) -> None:
        self.run.socket_errors += 1
        self.done = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done:
            self.run.socket_errors += 1
        self.run.closed()


async def _main(config: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    requests = [r.encode("latin-1") for r in config["requests"]]
    duration = float(config["duration"])
    timeout = float(config.get("timeout", 5.0))
    run = Run(requests, duration, int(config.get("seed", time.time_ns())))
    for _ in range(int(config["connections"])):
        try:
            await loop.create_connection(lambda: Connection(run), config["host"], config["port"])
        except OSError:
            run.socket_errors += 1
    if run.open:
        try:
            await asyncio.wait_for(run.finished, duration + timeout)
        except TimeoutError:
            run.socket_errors += run.open
    elapsed = (min(time.perf_counter_ns(), run.deadline) - run.start) / 1e9
    latencies = sorted(run.latencies)
    count = len(latencies)
    ok = sum(n for status, n in run.statuses.items() if 200 <= status < 400)
    return {
        "requests": count,
        "duration_s": elapsed,
        "rps": count / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(latencies, 50) / 1e6,
        "p90_ms": percentile(latencies, 90) / 1e6,
        "p99_ms": percentile(latencies, 99) / 1e6,
        "max_ms": (latencies[-1] if latencies else 0) / 1e6,
        "mean_ms": (sum(latencies) / count / 1e6) if count else 0.0,
        "non_2xx": count - ok,
        "socket_errors": run.socket_errors,
        "statuses": {str(status): n for status, n in sorted(run.statuses.items())},
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        config = json.load(file)
    result = uvloop.run(_main(config))
    sys.stdout.write(json.dumps(result) + "\n")
    if not result["requests"]:
        sys.exit("loadgen: no request completed")


if __name__ == "__main__":
    main()
