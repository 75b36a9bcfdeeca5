"""Trovo live status: one ``POST /openplatform/channels/id`` per channel, a bounded number at once.

See PLATFORM_APIS.md §4: no OAuth token (the ``Client-ID`` header only), a flat answer with no
envelope, times as strings of epoch seconds, a blank object for an unknown id, and errors (the rate
limit among them) as ``{"status": <code>, ...}`` in the body, whatever the HTTP status says.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from lumio.kit.clock import Clock, utc_now
from lumio.kit.http import HttpResponse
from lumio.kit.settings import TrovoSettings
from lumio.platforms.base import (
    ChannelNotFound,
    LiveStream,
    Observation,
    ObservationKind,
    Platform,
    PlatformError,
    ResolvedChannel,
)
from lumio.platforms.kick import (
    AUTH,
    BAD_BODY,
    NOT_FOUND,
    RATE_LIMITED,
    SERVER_ERROR,
    STOP_BATCH_KINDS,
    HttpAdapter,
    epoch_to_datetime,
    handle_from_url,
    parse_body,
    retry_after_seconds,
    status_error,
    unique,
    unknown,
)

CHANNEL_PATH = "/openplatform/channels/id"
GETUSERS_PATH = "/openplatform/getusers"
TROVO_HOSTS = frozenset({"trovo.live", "www.trovo.live"})
TROVO_USERNAME_RE = re.compile(r"^[\w.-]{1,64}$", re.ASCII)
# Error codes in the body (trovo-rs errors.rs).
RATE_LIMIT_CODE = 11706
INVALID_PARAMETERS_CODE = 1002
AUTH_CODES = frozenset({10703, 11701, 11704, 11712, 11714})
SERVER_CODES = frozenset({-1000, -1201})
USER_NOT_FOUND_CODE = 10505
INVALID_REQUEST = "invalid_request"
API_ERROR = "api_error"


class _TrovoError(BaseModel):
    status: int
    error: str = ""
    message: str = ""


class _TrovoChannel(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)
    # Both are in every answer, the blank one for an unknown id included.
    username: str
    is_live: bool
    live_title: str = ""
    category_name: str = ""
    current_viewers: int | None = None
    started_at: str = ""


class _TrovoUser(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)
    username: str
    nickname: str = ""
    channel_id: str


class _TrovoUsers(BaseModel):
    users: list[_TrovoUser] = []


@dataclass
class _Batch:
    # Set by the first request that says to stop; requests not yet sent are then not sent.
    stop: PlatformError | None = None


class TrovoAdapter(HttpAdapter):
    platform = Platform.TROVO
    # Channels per observe() call; each is its own request, max_concurrency at a time.
    batch_size = 50

    def __init__(
        self, config: TrovoSettings, client: httpx.AsyncClient | None = None, clock: Clock = utc_now
    ) -> None:
        super().__init__(client, config.timeout.total_seconds(), clock)
        self._config = config
        # One bound per adapter, so concurrent batches share it instead of multiplying it.
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._headers = {
            "Accept": "application/json",
            "Client-ID": config.client_id,
            "Content-Type": "application/json",
        }

    async def _observe(self, channel_ids: list[str]) -> list[Observation]:
        batch = _Batch()
        return list(
            await asyncio.gather(*(self._observe_one(c, batch) for c in unique(channel_ids)))
        )

    async def resolve(self, handle: str) -> ResolvedChannel:
        name = trovo_username(handle)
        try:
            response = await self._post(GETUSERS_PATH, {"user": [name]})
        except PlatformError as error:
            if error.kind in (NOT_FOUND, INVALID_REQUEST):
                raise ChannelNotFound(f"no Trovo user {handle!r}") from error
            raise
        users = parse_body(_TrovoUsers, response).users
        user = next((u for u in users if u.username.lower() == name.lower()), None)
        if user is None or not user.channel_id:
            raise ChannelNotFound(f"no Trovo user {handle!r}")
        return ResolvedChannel(user.channel_id, user.nickname or user.username)

    async def _observe_one(self, channel_id: str, batch: _Batch) -> Observation:
        if not (channel_id.isascii() and channel_id.isdigit()):
            return unknown([channel_id], self._clock(), NOT_FOUND, "not a Trovo channel id")[0]
        async with self._slots:
            observed_at = self._clock()
            if batch.stop is not None:
                message = f"not sent: {batch.stop}"
                return unknown([channel_id], observed_at, batch.stop.kind, message)[0]
            try:
                response = await self._post(CHANNEL_PATH, {"channel_id": channel_id})
                channel = parse_body(_TrovoChannel, response)
            except PlatformError as error:
                if error.kind in STOP_BATCH_KINDS:
                    batch.stop = error
                return unknown([channel_id], observed_at, error.kind, str(error))[0]
        return trovo_observation(channel_id, channel, observed_at)

    async def _post(self, path: str, body: dict[str, object]) -> HttpResponse:
        url = self._config.api_base.rstrip("/") + path
        response = await self._fetch("POST", url, self._headers, body=orjson.dumps(body))
        now = self._clock()
        error = trovo_error(response, now) or status_error(response, now, f"POST {path}")
        if error is not None:
            raise error
        return response


def trovo_error(response: HttpResponse, now: datetime) -> PlatformError | None:
    """The error a ``{"status": code, ...}`` body stands for, whatever the HTTP status."""
    try:
        body = _TrovoError.model_validate_json(response.content)
    except ValidationError:
        return None
    message = (
        f"Trovo status {body.status} (HTTP {response.status_code}): {body.message or body.error}"
    )
    if body.status == RATE_LIMIT_CODE:
        retry_after = retry_after_seconds(response.headers.get("retry-after"), now)
        return PlatformError(RATE_LIMITED, message, retry_after)
    if body.status in AUTH_CODES:
        return PlatformError(AUTH, message)
    if body.status in SERVER_CODES:
        return PlatformError(SERVER_ERROR, message)
    if body.status == USER_NOT_FOUND_CODE:
        return PlatformError(NOT_FOUND, message)
    if body.status == INVALID_PARAMETERS_CODE:
        return PlatformError(INVALID_REQUEST, message)
    return PlatformError(API_ERROR, message)


def trovo_observation(
    channel_id: str, channel: _TrovoChannel, observed_at: datetime
) -> Observation:
    if not channel.username:
        # Trovo answers an unknown id with a 200 and a blanked-out channel.
        return unknown([channel_id], observed_at, NOT_FOUND, "Trovo answered a blank channel")[0]
    if not channel.is_live:
        return Observation(channel_id, ObservationKind.OFFLINE, observed_at)
    started_at = trovo_time(channel.started_at)
    if started_at is None:
        message = f"live without a start time: {channel.started_at!r}"
        return unknown([channel_id], observed_at, BAD_BODY, message)[0]
    stream = LiveStream(
        title=channel.live_title or None,
        category=channel.category_name or None,
        viewers=channel.current_viewers,
        started_at=started_at,
        # channel id + started_at is Trovo's session key (PLATFORM_APIS.md §6).
        stream_id=f"{channel_id}-{int(started_at.timestamp())}",
    )
    return Observation(channel_id, ObservationKind.LIVE, observed_at, stream)


def trovo_time(value: str) -> datetime | None:
    """A Trovo time (a string of epoch seconds); None when empty or zero."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) == 0:
        return None
    return epoch_to_datetime(int(text))


def trovo_username(handle: str) -> str:
    """The username in what a user typed (name, @name, trovo.live/s/name); ChannelNotFound if none."""
    name = handle_from_url(handle, TROVO_HOSTS, prefixes=frozenset({"s"}))
    if not TROVO_USERNAME_RE.match(name):
        raise ChannelNotFound(f"not a Trovo username: {handle!r}")
    return name
