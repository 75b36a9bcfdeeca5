"""What every fake platform shares: channel state, failure injection, request statistics, an
injectable clock and the ``/_control/`` HTTP interface (PLATFORM_APIS.md §6).

Control interface (JSON), the same on every fake:

| method | path | body / answer |
|---|---|---|
| GET | /_control/channels | every channel |
| POST | /_control/channels | ``{"name", "channel_id"?, "display_name"?, "title"?, "category"?, "category_id"?, "viewers"?, "live"?}`` → 201 channel |
| GET, PATCH, DELETE | /_control/channels/{id} | PATCH ``{"live"?, "title"?, "category"?, "category_id"?, "viewers"?, "flapping"?}`` |
| POST, DELETE | /_control/failures | POST ``{"mode": "5xx\\|429\\|garbage\\|timeout\\|blocked\\|blocked_html\\|401", "count"?, "path"?}`` |
| PUT | /_control/settings | ``{"latency"?, "retry_after"?, "hang_seconds"?}`` |
| GET, DELETE | /_control/stats | requests and peak concurrency per endpoint; DELETE resets |
| POST | /_control/clock/advance | ``{"seconds"}``, only with a ``ManualClock`` |
| POST | /_control/reset | no channels, failures, statistics (or tokens) any more |
| POST | /_control/tokens/expire | (Kick) every issued token stops working |
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

EpochClock = Callable[[], float]
Handler = Callable[[Request], Awaitable[Response]]
_M = TypeVar("_M", bound=BaseModel)

# 2026-01-01T00:00:00Z: a fixed, plausible "now" for tests that move the clock by hand.
MANUAL_CLOCK_START = 1_767_225_600.0
CLOUDFLARE_BLOCK_JSON = {"error": "Request blocked by security policy.", "reference": "9e4db7e3"}
CLOUDFLARE_CHALLENGE_HTML = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    "<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)
CLOUDFLARE_HEADERS = {"cf-ray": "8f1c2d3e4a5b6c7d-FRA", "server": "cloudflare"}


# --- shared by every fake -----------------------------------------------------------------------


class ManualClock:
    """Epoch seconds that move only when a test (or ``/_control/clock/advance``) says so."""

    def __init__(self, start: float = MANUAL_CLOCK_START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FailureMode(StrEnum):
    SERVER_ERROR = "5xx"
    RATE_LIMITED = "429"
    # A 200 whose body is not the documented shape (cut-off JSON).
    GARBAGE = "garbage"
    # No answer until the client gives up (or ``hang_seconds`` pass).
    TIMEOUT = "timeout"
    # Cloudflare's 403 JSON "Request blocked by security policy."
    BLOCKED = "blocked"
    # Cloudflare's 403 "Just a moment..." challenge page.
    BLOCKED_HTML = "blocked_html"
    UNAUTHORIZED = "401"


@dataclass
class FakeChannel:
    channel_id: str
    # Kick slug / Trovo username: lowercase, unique.
    name: str
    display_name: str
    created_at: float
    title: str = ""
    category: str = ""
    category_id: int = 0
    viewers: int = 0
    live: bool = False
    started_at: float | None = None
    ended_at: float | None = None
    # While live, every second read answers offline (a platform flapping at go-live).
    flapping: bool = False
    reads: int = 0


class NewChannel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    channel_id: str | None = Field(default=None, pattern=r"^[0-9]{1,18}$")
    display_name: str | None = None
    title: str = ""
    category: str = ""
    category_id: int = Field(default=0, ge=0)
    viewers: int = Field(default=0, ge=0)
    live: bool = False


class ChannelPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    live: bool | None = None
    title: str | None = None
    category: str | None = None
    category_id: int | None = Field(default=None, ge=0)
    viewers: int | None = Field(default=None, ge=0)
    flapping: bool | None = None


class FailurePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: FailureMode
    count: int = Field(default=1, ge=1)
    # None: any data endpoint (not the token endpoint); else only this path.
    path: str | None = None


class SettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Seconds each platform request takes (lets tests see concurrency).
    latency: float | None = Field(default=None, ge=0, le=30)
    # Seconds sent in Retry-After with a 429.
    retry_after: int | None = Field(default=None, ge=0)
    hang_seconds: float | None = Field(default=None, ge=0, le=300)


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0)


class FakePlatformState:
    """Channels, planned failures and request statistics of one fake platform.

    The app runs in FakeServer's thread while tests change the state from theirs: every access
    goes through one lock.
    """

    def __init__(self, clock: EpochClock = time.time, first_id: int = 100_000) -> None:
        self.clock = clock
        self._first_id = first_id
        self._lock = threading.RLock()
        self._channels: dict[str, FakeChannel] = {}
        self._failures: list[FailurePlan] = []
        self._requests: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._max_in_flight: Counter[str] = Counter()
        self.reset()

    def reset(self) -> None:
        """Back to a new, empty platform (one server can then serve many tests)."""
        with self._lock:
            self.latency = 0.0
            self.retry_after = 5
            self.hang_seconds = 30.0
            self._next_id = self._first_id
            self._channels.clear()
            self._failures.clear()
            self._requests.clear()
            self._max_in_flight.clear()

    # channels

    def add_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        display_name: str | None = None,
        title: str = "",
        category: str = "",
        category_id: int = 0,
        viewers: int = 0,
        live: bool = False,
    ) -> FakeChannel:
        new = NewChannel(
            name=name,
            channel_id=channel_id,
            display_name=display_name,
            title=title,
            category=category,
            category_id=category_id,
            viewers=viewers,
            live=live,
        )
        return self.add(new)

    def add(self, new: NewChannel) -> FakeChannel:
        """Raises ValueError when the id or name is taken."""
        with self._lock:
            cid = new.channel_id or self._take_id()
            name = new.name.lower()
            if cid in self._channels or self._by_name(name) is not None:
                raise ValueError(f"channel {cid} / {name!r} exists")
            channel = FakeChannel(
                channel_id=cid,
                name=name,
                display_name=new.display_name or new.name,
                created_at=self.clock(),
                title=new.title,
                category=new.category,
                category_id=new.category_id,
            )
            self._channels[cid] = channel
            return self.update(cid, ChannelPatch(live=new.live, viewers=new.viewers))

    def remove_channel(self, channel_id: str) -> None:
        """The channel is deleted: the platform no longer knows it. Raises KeyError."""
        with self._lock:
            del self._channels[channel_id]

    def update(self, channel_id: str, patch: ChannelPatch) -> FakeChannel:
        """Apply ``patch``; going live starts a new stream, going offline ends it. Raises KeyError."""
        with self._lock:
            channel = self._channels[channel_id]
            if patch.live is True and not channel.live:
                channel.live, channel.started_at, channel.ended_at = True, self.clock(), None
            if patch.live is False and channel.live:
                channel.live, channel.ended_at, channel.viewers = False, self.clock(), 0
            if patch.flapping is not None:
                channel.flapping, channel.reads = patch.flapping, 0
            for field in ("title", "category", "category_id", "viewers"):
                value = getattr(patch, field)
                if value is not None:
                    setattr(channel, field, value)
            return replace(channel)

    def set_live(
        self,
        channel_id: str,
        *,
        title: str | None = None,
        category: str | None = None,
        viewers: int | None = None,
    ) -> FakeChannel:
        patch = ChannelPatch(live=True, title=title, category=category, viewers=viewers)
        return self.update(channel_id, patch)

    def set_offline(self, channel_id: str) -> FakeChannel:
        return self.update(channel_id, ChannelPatch(live=False))

    def set_title(self, channel_id: str, title: str) -> FakeChannel:
        return self.update(channel_id, ChannelPatch(title=title))

    def set_category(self, channel_id: str, category: str, category_id: int = 0) -> FakeChannel:
        return self.update(channel_id, ChannelPatch(category=category, category_id=category_id))

    def set_viewers(self, channel_id: str, viewers: int) -> FakeChannel:
        return self.update(channel_id, ChannelPatch(viewers=viewers))

    def set_flapping(self, channel_id: str, flapping: bool = True) -> FakeChannel:
        return self.update(channel_id, ChannelPatch(flapping=flapping))

    def channel(self, channel_id: str) -> FakeChannel | None:
        """The channel as stored (no flapping, no read counted)."""
        with self._lock:
            channel = self._channels.get(channel_id)
            return None if channel is None else replace(channel)

    def channels(self) -> list[FakeChannel]:
        with self._lock:
            return [replace(channel) for channel in self._channels.values()]

    def read(self, channel_id: str) -> FakeChannel | None:
        """The channel as one platform answer shows it (flapping applied)."""
        with self._lock:
            channel = self._channels.get(channel_id)
            if channel is None:
                return None
            channel.reads += 1
            seen = replace(channel)
            if channel.flapping and channel.live and channel.reads % 2 == 0:
                seen.live, seen.viewers = False, 0
            return seen

    def read_name(self, name: str) -> FakeChannel | None:
        with self._lock:
            channel = self._by_name(name.lower())
            return None if channel is None else self.read(channel.channel_id)

    def _by_name(self, name: str) -> FakeChannel | None:
        return next((c for c in self._channels.values() if c.name == name), None)

    def _take_id(self) -> str:
        while str(self._next_id) in self._channels:
            self._next_id += 1
        self._next_id += 1
        return str(self._next_id - 1)

    # failures

    def fail_next(self, count: int, mode: FailureMode | str, path: str | None = None) -> None:
        """The next ``count`` requests (to ``path``, or to any data endpoint) fail with ``mode``."""
        plan = FailurePlan(mode=FailureMode(mode), count=count, path=path)
        with self._lock:
            self._failures.append(plan)

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def take_failure(self, path: str, by_default: bool) -> FailureMode | None:
        with self._lock:
            for plan in self._failures:
                if plan.path == path or (plan.path is None and by_default):
                    plan.count -= 1
                    if plan.count == 0:
                        self._failures.remove(plan)
                    return plan.mode
            return None

    def apply_settings(self, patch: SettingsPatch) -> None:
        with self._lock:
            if patch.latency is not None:
                self.latency = patch.latency
            if patch.retry_after is not None:
                self.retry_after = patch.retry_after
            if patch.hang_seconds is not None:
                self.hang_seconds = patch.hang_seconds

    # statistics

    @contextmanager
    def track(self, endpoint: str) -> Iterator[None]:
        with self._lock:
            self._requests[endpoint] += 1
            self._in_flight[endpoint] += 1
            peak = max(self._max_in_flight[endpoint], self._in_flight[endpoint])
            self._max_in_flight[endpoint] = peak
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[endpoint] -= 1

    def requests(self, endpoint: str) -> int:
        """Requests so far to ``endpoint``, e.g. ``"GET /public/v1/channels"``."""
        with self._lock:
            return self._requests[endpoint]

    def max_in_flight(self, endpoint: str) -> int:
        with self._lock:
            return self._max_in_flight[endpoint]

    def stats(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                "requests": dict(self._requests),
                "max_in_flight": dict(self._max_in_flight),
                "in_flight": {k: v for k, v in self._in_flight.items() if v},
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._requests.clear()
            self._max_in_flight.clear()


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def garbage_response() -> Response:
    # Cut off mid-object, with a JSON content type: what a proxy dropping the connection leaves.
    return Response(b'{"data":[{"id":12', media_type="application/json")


def blocked_response(mode: FailureMode) -> Response:
    if mode is FailureMode.BLOCKED_HTML:
        headers = {**CLOUDFLARE_HEADERS, "cf-mitigated": "challenge"}
        return HTMLResponse(CLOUDFLARE_CHALLENGE_HTML, status_code=403, headers=headers)
    return JSONResponse(CLOUDFLARE_BLOCK_JSON, status_code=403, headers=CLOUDFLARE_HEADERS)


async def _hang(request: Request, seconds: float) -> None:
    """Answer nothing until the client gives up, so the server can stop without waiting it out."""

    async def disconnected() -> None:
        # The body is read already: the next message is the disconnect.
        while (await request.receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), seconds)


def platform_route(
    state: FakePlatformState,
    method: str,
    path: str,
    handler: Handler,
    render_failure: Callable[[FailureMode], Response],
    fails_by_default: bool = True,
) -> Route:
    """A platform endpoint with statistics, latency and planned failures around ``handler``."""
    endpoint = f"{method} {path}"

    async def serve(request: Request) -> Response:
        # Read the body first: watching for a disconnect (timeout mode) consumes receive().
        await request.body()
        with state.track(endpoint):
            if state.latency:
                await asyncio.sleep(state.latency)
            failure = state.take_failure(path, fails_by_default)
            if failure is FailureMode.TIMEOUT:
                await _hang(request, state.hang_seconds)
                return Response(status_code=504)
            if failure is not None:
                return render_failure(failure)
            return await handler(request)

    return Route(path, serve, methods=[method])


async def parse_json(model: type[_M], request: Request) -> _M | JSONResponse:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as error:
        return JSONResponse({"detail": error.errors(include_url=False, include_context=False)}, 422)


def _not_found(channel_id: str) -> JSONResponse:
    return JSONResponse({"detail": f"no channel {channel_id}"}, status_code=404)


def control_routes(state: FakePlatformState) -> list[Route]:
    """The ``/_control/`` interface, for tests and a simulator in another process."""

    async def list_channels(request: Request) -> Response:
        return JSONResponse([asdict(c) for c in state.channels()])

    async def add_channel(request: Request) -> Response:
        new = await parse_json(NewChannel, request)
        if isinstance(new, JSONResponse):
            return new
        try:
            return JSONResponse(asdict(state.add(new)), status_code=201)
        except ValueError as error:
            return JSONResponse({"detail": str(error)}, status_code=409)

    async def one_channel(request: Request) -> Response:
        cid = request.path_params["channel_id"]
        if request.method == "DELETE":
            if state.channel(cid) is None:
                return _not_found(cid)
            state.remove_channel(cid)
            return Response(status_code=204)
        patch = ChannelPatch()
        if request.method == "PATCH":
            parsed = await parse_json(ChannelPatch, request)
            if isinstance(parsed, JSONResponse):
                return parsed
            patch = parsed
        try:
            return JSONResponse(asdict(state.update(cid, patch)))
        except KeyError:
            return _not_found(cid)

    async def failures(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_failures()
            return Response(status_code=204)
        plan = await parse_json(FailurePlan, request)
        if isinstance(plan, JSONResponse):
            return plan
        state.fail_next(plan.count, plan.mode, plan.path)
        return Response(status_code=204)

    async def settings(request: Request) -> Response:
        patch = await parse_json(SettingsPatch, request)
        if isinstance(patch, JSONResponse):
            return patch
        state.apply_settings(patch)
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        if request.method == "DELETE":
            state.reset_stats()
            return Response(status_code=204)
        return JSONResponse(state.stats())

    async def reset(request: Request) -> Response:
        state.reset()
        return Response(status_code=204)

    async def advance_clock(request: Request) -> Response:
        if not isinstance(state.clock, ManualClock):
            return JSONResponse({"detail": "this fake runs on the real clock"}, status_code=409)
        step = await parse_json(ClockAdvance, request)
        if isinstance(step, JSONResponse):
            return step
        state.clock.advance(step.seconds)
        return JSONResponse({"now": state.clock()})

    return [
        Route("/_control/channels", list_channels, methods=["GET"]),
        Route("/_control/channels", add_channel, methods=["POST"]),
        Route("/_control/channels/{channel_id}", one_channel, methods=["GET", "PATCH", "DELETE"]),
        Route("/_control/failures", failures, methods=["POST", "DELETE"]),
        Route("/_control/settings", settings, methods=["PUT"]),
        Route("/_control/stats", stats, methods=["GET", "DELETE"]),
        Route("/_control/clock/advance", advance_clock, methods=["POST"]),
        Route("/_control/reset", reset, methods=["POST"]),
    ]


# --- Kick ---------------------------------------------------------------------------------------
