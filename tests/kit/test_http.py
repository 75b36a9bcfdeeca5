"""The lean keep-alive client against a raw HTTP/1.1 server that misbehaves on request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from lumio.kit.http import HttpClient, HttpError, HttpPool, HttpTimeout

Answer = Callable[[bytes], bytes | None]


def fixed(status: int, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    b'5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
)


@dataclass
class RawServer:
    """Answers each request with what ``answer`` returns for it (None: close without a word)."""

    answer: Answer
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.requests.append(head)
                reply = self.answer(head)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def drop_idle(self) -> None:
        """The server's keep-alive timeout: every open connection closes."""
        for writer in self.writers:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[RawServer, str]]:
    raw = RawServer(lambda _: fixed(200, b'{"ok":true}'))
    listening = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    yield raw, f"http://127.0.0.1:{port}"
    listening.close()
    raw.drop_idle()


async def test_requests_reuse_one_connection_and_send_the_headers(
    server: tuple[RawServer, str],
) -> None:
    raw, url = server
    pool = HttpPool(url + "/base", max_connections=4)
    for _ in range(3):
        answer = await pool.get("/v1/x?a=b,c", {"Authorization": "Bearer t"})
        assert (answer.status_code, answer.content) == (200, b'{"ok":true}')
        assert answer.headers["content-length"] == "11"
    assert raw.connections == 1
    assert raw.requests[0].startswith(b"GET /base/v1/x?a=b,c HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAuthorization: Bearer t\r\n" in raw.requests[0]
    await pool.aclose()


async def test_a_connection_closed_while_idle_is_replaced_without_an_error(
    server: tuple[RawServer, str],
) -> None:
    raw, url = server
    pool = HttpPool(url)
    await pool.get("/", {})
    raw.drop_idle()
    await asyncio.sleep(0.05)
    assert (await pool.get("/", {})).status_code == 200
    assert raw.connections == 2
    await pool.aclose()


async def test_chunked_bodies_no_body_and_connection_close(server: tuple[RawServer, str]) -> None:
    raw, url = server
    pool = HttpPool(url)
    raw.answer = lambda _: CHUNKED
    assert (await pool.get("/", {})).content == b'{"a": 1}'
    raw.answer = lambda _: b"HTTP/1.1 204 No Content\r\n\r\n"
    nothing = await pool.get("/", {})
    assert (nothing.status_code, nothing.content) == (204, b"")
    raw.answer = lambda _: fixed(200, b"bye", "Connection: close")
    assert (await pool.get("/", {})).content == b"bye"
    assert (await pool.get("/", {})).content == b"bye"
    # The first connection served three answers; the server closed it after the third.
    assert raw.connections == 2
    await pool.aclose()


async def test_failures_are_http_errors(server: tuple[RawServer, str]) -> None:
    raw, url = server
    pool = HttpPool(url, timeout=0.3)
    raw.answer = lambda _: None
    with pytest.raises(HttpError, match="closed"):
        await pool.get("/", {})
    raw.answer = lambda _: b"NONSENSE\r\n\r\n"
    with pytest.raises(HttpError, match="malformed"):
        await pool.get("/", {})
    raw.answer = lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"
    with pytest.raises(HttpTimeout):
        await pool.get("/", {})
    with pytest.raises(ValueError, match="line break"):
        await pool.get("/", {"X-Evil": "a\r\nInjected: 1"})
    await pool.aclose()
    refused = HttpPool("http://127.0.0.1:9")
    with pytest.raises(HttpError, match="cannot connect"):
        await refused.get("/", {})


async def test_post_sends_its_body_and_a_time_limit_of_its_own(
    server: tuple[RawServer, str],
) -> None:
    raw, url = server
    pool = HttpPool(url, timeout=5.0)
    answer = await pool.request("POST", "/hook", {"Content-Type": "application/json"}, b'{"a":1}')
    assert answer.status_code == 200
    # The raw server reads the head only: the body follows it on the wire.
    assert raw.requests[0].startswith(b"POST /hook HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 7\r\n" in raw.requests[0]
    raw.answer = lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"
    with pytest.raises(HttpTimeout, match=r"0\.2 s"):
        await pool.get("/", {}, time_limit=0.2)
    with pytest.raises(ValueError, match="method"):
        await pool.request("HEAD", "/", {})
    await pool.aclose()


async def test_a_capped_body_fails_or_comes_back_cut(server: tuple[RawServer, str]) -> None:
    raw, url = server
    raw.answer = lambda _: fixed(200, b"x" * 5000)
    strict = HttpPool(url, max_body_bytes=1024)
    with pytest.raises(HttpError, match="too large"):
        await strict.get("/", {})
    cut = HttpPool(url, max_body_bytes=1024, truncate_body=True)
    answer = await cut.get("/", {})
    assert (answer.content, answer.truncated) == (b"x" * 1024, True)
    # The rest was never read: the next request goes out on a new connection.
    raw.answer = lambda _: fixed(200, b"short")
    assert (await cut.get("/", {})).truncated is False
    await strict.aclose()
    await cut.aclose()


async def test_connect_to_an_address_while_naming_the_host(server: tuple[RawServer, str]) -> None:
    raw, url = server
    port = url.rsplit(":", 1)[1]
    pool = HttpPool(f"http://hooks.example.test:{port}", connect_to="127.0.0.1")
    assert (await pool.get("/x", {})).status_code == 200
    assert raw.requests[0].startswith(
        f"GET /x HTTP/1.1\r\nHost: hooks.example.test:{port}\r\n".encode()
    )
    await pool.aclose()


async def test_client_keeps_a_pool_per_origin_and_encodes_params(
    server: tuple[RawServer, str],
) -> None:
    raw, url = server
    raw.answer = lambda _: fixed(200, b"{}", "Retry-After: 7")
    client = HttpClient()
    answer = await client.request("GET", url + "/v1/c?x=1", params={"id": ["1", "2"], "q": "a b"})
    assert answer.headers["retry-after"] == answer.headers.get("Retry-After") == "7"
    assert "RETRY-AFTER" in answer.headers
    await client.request("GET", url.replace("127.0.0.1", "localhost") + "/", params=[("a", "1")])
    assert raw.requests[0].startswith(b"GET /v1/c?x=1&id=1&id=2&q=a+b HTTP/1.1\r\n")
    assert raw.requests[1].startswith(b"GET /?a=1 HTTP/1.1\r\nHost: localhost:")
    assert raw.connections == 2
    with pytest.raises(HttpError, match="not an http"):
        await client.request("GET", "ftp://127.0.0.1/")
    await client.aclose()
