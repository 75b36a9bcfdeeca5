"""HTTP limits of `lumio api` (issue 10, item 5): head size and count (431), and the time a
client may take to send a request head or its body (408), idle connections included."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.apiserver import ApiProcess


@pytest.fixture(scope="module")
def limited_server(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    log = tmp_path_factory.mktemp("limits") / "api.log"
    env = {"LUMIO_HTTP_HEADER_TIMEOUT_SECONDS": "1", "LUMIO_HTTP_BODY_TIMEOUT_SECONDS": "1"}
    with ApiProcess(database_url, redis_url, log, env=env) as server:
        yield server


async def raw_exchange(server: ApiProcess, data: bytes, wait: float = 5.0) -> tuple[bytes, float]:
    """Send ``data`` and read until the server closes: (what it answered, seconds it took)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    answer = b""
    try:
        if data:
            writer.write(data)
            await writer.drain()
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                answer += chunk
    except ConnectionResetError:
        pass
    finally:
        writer.close()
    return answer, time.monotonic() - started


async def test_an_8_mb_header_is_431(limited_server: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=limited_server.base_url, timeout=30) as client:
        try:
            answer = await client.get("/healthz", headers={"X-Big": "a" * 8 * 1024 * 1024})
        except httpx.HTTPError:
            pytest.fail("the server should answer 431, not drop the connection silently")
        assert answer.status_code == 431
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "REQUEST_HEADER_FIELDS_TOO_LARGE"
        assert (await client.get("/healthz")).status_code == 200


async def test_too_many_headers_are_431(limited_server: ApiProcess) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        f"X-H{i}: 1\r\n".encode() for i in range(150)
    )
    answer, _ = await raw_exchange(limited_server, head + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431")


async def test_a_half_sent_head_is_closed_with_408(limited_server: ApiProcess) -> None:
    answer, took = await raw_exchange(limited_server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert answer.startswith(b"HTTP/1.1 408")
    assert took < 3.0


async def test_a_trickled_body_is_closed_with_408(limited_server: ApiProcess) -> None:
    head = b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    answer, took = await raw_exchange(limited_server, head + b"Content-Length: 100\r\n\r\n{")
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"body did not arrive" in answer
    assert took < 3.0


async def test_a_body_sent_in_time_is_served(limited_server: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=limited_server.base_url, timeout=5) as client:
        answer = await client.post("/v1/auth/login", json={"email": "a@b.c", "password": "x"})
        assert answer.status_code == 401
        await asyncio.sleep(1.5)  # longer than the body limit: nothing left running fires
        assert (await client.get("/healthz")).status_code == 200


async def test_an_idle_connection_is_closed(limited_server: ApiProcess) -> None:
    answer, took = await raw_exchange(limited_server, b"")
    assert took < 3.0
    # Closed, with a 408 or without a word (nothing was asked).
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")


async def test_normal_requests_and_keep_alive_still_work(limited_server: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=limited_server.base_url, timeout=5) as client:
        for _ in range(3):
            assert (await client.get("/healthz")).status_code == 200
        await asyncio.sleep(1.5)  # idle between requests: the keep-alive may close, no error
        assert (await client.get("/healthz")).status_code == 200
        big_but_fine = {"X-Fine": "a" * 8000}
        assert (await client.get("/healthz", headers=big_but_fine)).status_code == 200


async def test_connections_past_the_cap_get_503(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {"LUMIO_HTTP_MAX_CONNECTIONS": "3"}
    with ApiProcess(database_url, redis_url, tmp_path / "api.log", env=env) as server:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        try:
            answer, _ = await raw_exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 3)
            assert answer.startswith(b"HTTP/1.1 503"), answer
        finally:
            for _, writer in held:
                writer.close()
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as client:
            assert (await client.get("/healthz")).status_code == 200
