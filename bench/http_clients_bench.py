"""HTTP clients for the hot paths, compared in one run: CPU per request and requests per second.

    .venv/bin/python -m bench.http_clients_bench [--requests 20000] [--concurrency 16] [--rounds 3]

One fake server (a bare uvloop + httptools HTTP/1.1 server in a process of its own, answering
every request with the same small JSON body, keep-alive) and, one after the other, a client
process per candidate sending the same GET (path, query, three headers, a per-request timeout)
with the same number of requests in flight:

- ``httpx``: ``httpx.AsyncClient``, as the platform adapters use it (``build_request``, the
  timeout set on the request, ``send``);
- ``aiohttp``: ``aiohttp.ClientSession`` (one connector, ``DummyCookieJar``, per-request
  ``ClientTimeout``, the body read);
- ``lumio``: the project's own httptools client (``lumio.kit.http.HttpPool``, before issue 15
  ``lumio.spotify.poller.http``).

Each client process runs under uvloop (like ``lumio worker``), warms up, then counts its own CPU
(``getrusage``: user + system) and wall time over the measured requests. The report gives, per
client, the median over ``--rounds`` of requests/s and µs of CPU per request, and both as ratios
to the hand-written client, measured in the same run. Issue 15's rule: a library within 1.5 times
the hand-written client's CPU per request replaces it on every hot path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import cast

import httptools
import uvloop

CLIENTS = ("httpx", "aiohttp", "lumio")
# A Trovo-sized answer (PLATFORM_APIS.md §4): the bodies of the per-channel hot paths are small.
BODY = json.dumps(
    {
        "is_live": False,
        "category_id": "",
        "category_name": "",
        "live_title": "",
        "audi_type": "CHANNEL_AUDIENCE_TYPE_FAMILYFRIENDLY",
        "language_code": "en",
        "thumbnail": "",
        "current_viewers": 0,
        "followers": 12,
        "streamer_info": "",
        "profile_pic": "https://headicon.trovo.live/user/bench.png",
        "channel_url": "https://trovo.live/bench",
        "created_at": "1600000000",
        "subscriber_num": 0,
        "username": "bench",
        "social_links": [],
        "started_at": "",
        "ended_at": "",
    }
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)
TARGET = "/helix/streams?user_id=123456789&first=100"
HEADERS = {
    "Client-Id": "bench-client-id",
    "Authorization": "Bearer bench-token-0123456789abcdef",
    "Accept": "application/json",
}
TIMEOUT = 10.0


# --- the server ---------------------------------------------------------------------------------


class _ServerConnection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_complete(self) -> None:
        if self.transport is not None:
            self.transport.write(RESPONSE)


async def _serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(
        _ServerConnection, "127.0.0.1", port, backlog=1024
    )
    print("ready", flush=True)
    await server.serve_forever()


# --- the clients --------------------------------------------------------------------------------

Send = Callable[[], Awaitable[int]]


async def _httpx_sender(base: str, concurrency: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(limits=limits)
    timeout = httpx.Timeout(TIMEOUT).as_dict()

    async def send() -> int:
        request = client.build_request("GET", base + TARGET, headers=HEADERS)
        request.extensions["timeout"] = timeout
        response = await client.send(request)
        return len(response.content)

    return send, client.aclose


async def _aiohttp_sender(
    base: str, concurrency: int
) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=None)
    session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    url = base + TARGET

    async def send() -> int:
        async with session.get(url, headers=HEADERS, timeout=timeout) as response:
            return len(await response.read())

    return send, session.close


async def _lumio_sender(base: str, concurrency: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    from lumio.kit.http import HttpPool

    pool = HttpPool(base, max_connections=concurrency, timeout=TIMEOUT)

    async def send() -> int:
        response = await pool.get(TARGET, HEADERS)
        return len(response.content)

    return send, pool.aclose


SENDERS = {"httpx": _httpx_sender, "aiohttp": _aiohttp_sender, "lumio": _lumio_sender}


async def _drive(send: Send, requests: int, concurrency: int) -> None:
    remaining = requests

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if await send() != len(BODY):
                raise RuntimeError("short body")

    await asyncio.gather(*(lane() for _ in range(concurrency)))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _client(name: str, base: str, requests: int, concurrency: int) -> dict[str, float]:
    send, close = await SENDERS[name](base, concurrency)
    await _drive(send, max(500, requests // 10), concurrency)
    cpu, wall = _cpu(), time.perf_counter()
    await _drive(send, requests, concurrency)
    cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    await close()
    return {"requests": requests, "cpu_s": cpu, "wall_s": wall}


# --- the run ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_client(name: str, base: str, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.http_clients_bench", "--client", name, "--url", base]
    command += ["--requests", str(args.requests), "--concurrency", str(args.concurrency)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    return cast(dict[str, float], json.loads(done.stdout.strip().splitlines()[-1]))


def _report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    figures = {}
    for name, runs in results.items():
        rate = statistics.median(r["requests"] / r["wall_s"] for r in runs)
        cpu_us = statistics.median(r["cpu_s"] / r["requests"] * 1e6 for r in runs)
        figures[name] = (rate, cpu_us)
    _, own_cpu = figures["lumio"]
    own_rate = figures["lumio"][0]
    print(
        f"\n{args.requests} GET requests per client and round, {args.concurrency} in flight, "
        f"{args.rounds} round(s), medians; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'client':<10}{'req/s':>10}{'CPU µs/req':>12}{'CPU x lumio':>13}{'req/s x lumio':>15}")
    for name, (rate, cpu_us) in figures.items():
        print(
            f"{name:<10}{rate:>10,.0f}{cpu_us:>12.0f}{cpu_us / own_cpu:>13.2f}"
            f"{rate / own_rate:>15.2f}"
        )
    aiohttp_ratio = figures["aiohttp"][1] / own_cpu
    verdict = "aiohttp everywhere" if aiohttp_ratio <= 1.5 else "keep the hand-written client"
    print(f"aiohttp / hand-written CPU per request: {aiohttp_ratio:.2f} (≤ 1.5?) → {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(_serve(args.serve))
        return
    if args.client:
        outcome = uvloop.run(_client(args.client, args.url, args.requests, args.concurrency))
        print(json.dumps(outcome))
        return
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.http_clients_bench", "--serve", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()
        results: dict[str, list[dict[str, float]]] = {name: [] for name in CLIENTS}
        for _ in range(args.rounds):
            for name in CLIENTS:
                results[name].append(_run_client(name, f"http://127.0.0.1:{port}", args))
        _report(results, args)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
