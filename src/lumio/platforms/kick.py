"""Kick live status: ``GET /public/v1/channels`` polled with an app access token.

See PLATFORM_APIS.md §3: up to 50 ``broadcaster_user_id`` a request, offline channels come back with
``stream.is_live`` false, unknown ones are silently omitted, answers use the ``{data, message}``
envelope, and Cloudflare sometimes answers for Kick with a 403 block page.

This module also holds the HTTP plumbing that the Trovo adapter shares (``HttpAdapter`` and the
response helpers below it); it belongs in a common module once one exists for all adapters.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field, ValidationError

from lumio.kit.clock import Clock, utc_now
from lumio.kit.http import Headers, HttpClient, HttpError, HttpResponse, HttpTimeout, Params
from lumio.kit.settings import KickSettings
from lumio.platforms.base import (
    NO_LIVE_STREAMS,
    ChannelNotFound,
    LiveStream,
    Observation,
    ObservationKind,
    Platform,
    PlatformError,
    PollResult,
    RateLimitInfo,
    ResolvedChannel,
    count_request,
    saw_rate_limit,
    tallying,
)

_M = TypeVar("_M", bound=BaseModel)

# Error kinds (metric labels), the same words the Twitch adapter uses; plus "http_<status>".
TIMEOUT = "timeout"
NETWORK = "network"
AUTH = "auth"
BAD_BODY = "bad_body"
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "http_5xx"
BLOCKED = "blocked"
NOT_FOUND = "not_found"
# After these the rest of a batch is not sent: more requests only deepen a ban or a block.
STOP_BATCH_KINDS = frozenset({RATE_LIMITED, BLOCKED, AUTH})
# Failures that pass by themselves; a token request failing otherwise points at the credentials.
TRANSIENT_KINDS = frozenset({TIMEOUT, NETWORK, SERVER_ERROR, RATE_LIMITED, BLOCKED})

KICK_MAX_IDS_PER_REQUEST = 50
# Kick documents no token lifetime; a secondary source says 7200 s. Used when expires_in is unusable.
KICK_DEFAULT_TOKEN_SECONDS = 3600.0
CHANNELS_PATH = "/public/v1/channels"
# Take a new token this long before the old one expires, so no poll runs into the expiry.
TOKEN_RENEW_MARGIN = timedelta(seconds=60)
KICK_HOSTS = frozenset({"kick.com", "www.kick.com"})
# Kick slugs are lowercase letters, digits, '-' and '_'; the length bound is generous on purpose,
# it only keeps junk from being sent.
KICK_SLUG_RE = re.compile(r"^[a-z0-9_-]{1,64}$")
# Cloudflare challenge and block pages, in front of Kick (and any other platform).
BLOCK_MARKERS = ("request blocked by security policy", "just a moment", "attention required")


# --- shared by every HTTP adapter -------------------------------------------------------------


class HttpAdapter:
    """The clients, request count and last rate-limit answer that every polling adapter keeps.

    Polling requests go through the lean client (``kit/http.py``, about 25 times less CPU per
    request than httpx: issue 15); the token requests, rare, through httpx.
    """

    def __init__(self, client: httpx.AsyncClient | None, timeout: float, clock: Clock) -> None:
        # An injected client belongs to the lifespan that made it; one made here is closed here.
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._http = HttpClient(timeout=timeout)
        self._timeout = timeout
        self._clock = clock
        self.rate_limit: RateLimitInfo | None = None
        # Every request, token requests included: each one is work the platform sees.
        self.requests_sent = 0
        self.quota_used = 0

    async def _send(self, request: httpx.Request) -> HttpResponse:
        """Send one request through httpx; transport failures become PlatformError."""
        self._count()
        # The configured timeout, also on an injected client made with other defaults.
        request.extensions["timeout"] = httpx.Timeout(self._timeout).as_dict()
        try:
            response = await self._client.send(request)
        except httpx.TimeoutException as error:
            raise PlatformError(TIMEOUT, f"{request.method} {request.url}: {error!r}") from error
        except httpx.HTTPError as error:
            raise PlatformError(NETWORK, f"{request.method} {request.url}: {error!r}") from error
        headers = Headers((name.lower(), value) for name, value in response.headers.items())
        return self._received(HttpResponse(response.status_code, headers, response.content))

    async def _fetch(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        params: Params | None = None,
        body: bytes = b"",
    ) -> HttpResponse:
        """One polling request through the lean client, like ``_send``."""
        self._count()
        try:
            response = await self._http.request(
                method, url, params=params, headers=headers, body=body
            )
        except HttpTimeout as error:
            raise PlatformError(TIMEOUT, f"{method} {url}: {error!r}") from error
        except HttpError as error:
            raise PlatformError(NETWORK, f"{method} {url}: {error!r}") from error
        return self._received(response)

    def _count(self) -> None:
        self.requests_sent += 1
        count_request()

    def _received(self, response: HttpResponse) -> HttpResponse:
        self.rate_limit = rate_limit_from_headers(response.headers, self._clock())
        saw_rate_limit(self.rate_limit)
        return response

    async def observe(
        self, channel_ids: list[str], live_streams: Mapping[str, str] = NO_LIVE_STREAMS
    ) -> PollResult:
        # Kick and Trovo answer for any channel id: no live-stream hint needed.
        with tallying() as tally:
            observations = await self._observe(channel_ids)
        return tally.result(observations)

    async def _observe(self, channel_ids: list[str]) -> list[Observation]:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._owns_client:
            await self._client.aclose()


def unknown(
    channel_ids: Iterable[str], observed_at: datetime, kind: str, message: str
) -> list[Observation]:
    return [
        Observation(cid, ObservationKind.UNKNOWN, observed_at, error_kind=kind, error=message)
        for cid in channel_ids
    ]


def unique(channel_ids: Iterable[str]) -> list[str]:
    """The ids once each, in order: observe() answers once per channel."""
    return list(dict.fromkeys(channel_ids))


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _header_number(headers: Headers, *names: str) -> float | None:
    for name in names:
        try:
            value = float(headers[name])
        except (KeyError, ValueError):
            continue
        if math.isfinite(value):
            return value
    return None


def rate_limit_from_headers(headers: Headers, now: datetime) -> RateLimitInfo:
    """Whatever budget the answer states; Kick and Trovo send no headers today, so mostly empty."""
    limit = _header_number(headers, "ratelimit-limit", "x-ratelimit-limit")
    remaining = _header_number(headers, "ratelimit-remaining", "x-ratelimit-remaining")
    return RateLimitInfo(
        limit=None if limit is None else int(limit),
        remaining=None if remaining is None else int(remaining),
        reset_at=_header_number(headers, "ratelimit-reset"),
        retry_after=retry_after_seconds(headers.get("retry-after"), now),
    )


def is_block_page(response: HttpResponse) -> bool:
    """A Cloudflare block or challenge: JSON "blocked by security policy" or a "Just a moment" page."""
    if response.headers.get("cf-mitigated") == "challenge":
        return True
    head = response.content[:4096].decode("utf-8", "replace").lower()
    return any(marker in head for marker in BLOCK_MARKERS)


def status_error(response: HttpResponse, now: datetime, what: str) -> PlatformError | None:
    """The error a non-2xx answer to ``what`` (method and path) stands for, None for a 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    message = f"{what} answered {status}"
    if status == 429:
        return PlatformError(
            RATE_LIMITED, message, retry_after_seconds(response.headers.get("retry-after"), now)
        )
    if status in (403, 503) and is_block_page(response):
        return PlatformError(BLOCKED, message + " (blocked by Cloudflare)")
    if status == 401:
        return PlatformError(AUTH, message)
    if status >= 500:
        return PlatformError(SERVER_ERROR, message)
    return PlatformError(f"http_{status}", message)


def parse_body(model: type[_M], response: HttpResponse) -> _M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        summary = response.content[:200].decode("utf-8", "replace")
        raise PlatformError(BAD_BODY, f"unexpected {model.__name__} body: {summary!r}") from error


def handle_from_url(
    handle: str, hosts: frozenset[str], prefixes: frozenset[str] = frozenset()
) -> str:
    """The channel name in a URL on one of ``hosts``, else the handle itself without '@'.

    Users paste ``kick.com/name``, ``https://www.trovo.live/s/name/`` or ``@name``; ``prefixes``
    are path segments before the name (Trovo's ``s``).
    """
    text = handle.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if (parts.hostname or "").lower() not in hosts:
        return text.removeprefix("@")
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[0].lower() in prefixes:
        segments = segments[1:]
    return segments[0] if segments else ""


def epoch_to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- Kick ---------------------------------------------------------------------------------------


class _KickToken(BaseModel):
    access_token: str = Field(min_length=1)
    # The docs show "" placeholders; accept a number or a numeric string.
    expires_in: float | str | None = None


class _KickCategory(BaseModel):
    name: str | None = None


class _KickStream(BaseModel):
    is_live: bool
    viewer_count: int | None = None
    start_time: str | None = None


class _KickChannel(BaseModel):
    broadcaster_user_id: int
    slug: str
    stream_title: str | None = None
    category: _KickCategory | None = None
    stream: _KickStream


class _KickEnvelope(BaseModel):
    # Entries are checked one by one: one odd entry must not cost the other 49.
    data: list[dict[str, object]]


@dataclass(frozen=True, slots=True)
class _AppToken:
    value: str
    renew_at: datetime


class KickAdapter(HttpAdapter):
    platform = Platform.KICK
    batch_size = KICK_MAX_IDS_PER_REQUEST

    def __init__(
        self, config: KickSettings, client: httpx.AsyncClient | None = None, clock: Clock = utc_now
    ) -> None:
        super().__init__(client, config.timeout.total_seconds(), clock)
        self._config = config
        self._token: _AppToken | None = None
        # One token request at a time, however many batches run at once.
        self._token_lock = asyncio.Lock()

    async def _observe(self, channel_ids: list[str]) -> list[Observation]:
        ids = unique(channel_ids)
        # Broadcaster user ids are numbers; anything else cannot be a Kick channel.
        numeric = [cid for cid in ids if cid.isascii() and cid.isdigit()]
        not_ids = set(ids) - set(numeric)
        observations = unknown(
            (cid for cid in ids if cid in not_ids), self._clock(), NOT_FOUND, "not a Kick id"
        )
        stop: PlatformError | None = None
        for chunk in chunks(numeric, self._config.ids_per_request):
            observed_at = self._clock()
            if stop is not None:
                observations += unknown(chunk, observed_at, stop.kind, f"not sent: {stop}")
                continue
            try:
                response = await self._get_channels("broadcaster_user_id", chunk)
                envelope = parse_body(_KickEnvelope, response)
            except PlatformError as error:
                observations += unknown(chunk, observed_at, error.kind, str(error))
                stop = error if error.kind in STOP_BATCH_KINDS else None
                continue
            observations += kick_observations(chunk, envelope.data, observed_at)
        return observations

    async def resolve(self, handle: str) -> ResolvedChannel:
        candidates = kick_slug_candidates(handle)
        envelope = parse_body(_KickEnvelope, await self._get_channels("slug", candidates))
        by_slug = {channel.slug.lower(): channel for channel in _valid_channels(envelope.data)}
        for slug in candidates:
            if slug in by_slug:
                channel = by_slug[slug]
                return ResolvedChannel(str(channel.broadcaster_user_id), channel.slug)
        raise ChannelNotFound(f"no Kick channel {handle!r}")

    async def _get_channels(self, key: str, values: list[str]) -> HttpResponse:
        """GET /public/v1/channels?key=v1&key=v2... with the app token.

        On 401 take a new token once and ask again: app tokens may be revoked before they expire.
        """
        url = self._config.api_base.rstrip("/") + CHANNELS_PATH
        for attempt in range(2):
            token = await self._valid_token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            response = await self._fetch("GET", url, headers, {key: values})
            if response.status_code != httpx.codes.UNAUTHORIZED or attempt == 1:
                break
            self._forget_token(token)
        error = status_error(response, self._clock(), f"GET {CHANNELS_PATH}")
        if error is not None:
            raise error
        return response

    async def app_headers(self) -> dict[str, str]:
        """A valid app token, for other Kick clients (event subscriptions)."""
        return {
            "Authorization": f"Bearer {await self._valid_token()}",
            "Accept": "application/json",
        }

    async def _valid_token(self) -> str:
        async with self._token_lock:
            if self._token is None or self._clock() >= self._token.renew_at:
                self._token = await self._new_token()
            return self._token.value

    def _forget_token(self, rejected: str) -> None:
        # Only drop the token that was rejected: a concurrent batch may already hold a newer one.
        if self._token is not None and self._token.value == rejected:
            self._token = None

    async def _new_token(self) -> _AppToken:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret,
        }
        request = self._client.build_request(
            "POST", self._config.id_base.rstrip("/") + "/oauth/token", data=form
        )
        try:
            response = await self._send(request)
            error = status_error(response, self._clock(), "POST /oauth/token")
            if error is not None:
                raise error
            answer = parse_body(_KickToken, response)
        except PlatformError as error:
            # An outage keeps its kind, so the worker backs off instead of reporting broken
            # credentials; anything else (400 "Invalid request", an odd body) is "auth".
            kind = error.kind if error.kind in TRANSIENT_KINDS else AUTH
            raise PlatformError(kind, f"no Kick app token: {error}", error.retry_after) from error
        lifetime = timedelta(seconds=token_seconds(answer.expires_in))
        renew_at = self._clock() + max(lifetime - TOKEN_RENEW_MARGIN, lifetime / 2)
        return _AppToken(answer.access_token, renew_at)


def token_seconds(expires_in: float | str | None) -> float:
    try:
        seconds = float(expires_in) if expires_in is not None else 0.0
    except ValueError:
        seconds = 0.0
    return seconds if seconds > 0 else KICK_DEFAULT_TOKEN_SECONDS


def _valid_channels(entries: list[dict[str, object]]) -> Iterator[_KickChannel]:
    for entry in entries:
        try:
            yield _KickChannel.model_validate(entry)
        except ValidationError:
            continue


def kick_observations(
    requested: list[str], entries: list[dict[str, object]], observed_at: datetime
) -> list[Observation]:
    """One observation per requested id from the ``data`` of a /public/v1/channels answer."""
    channels = {str(c.broadcaster_user_id): c for c in _valid_channels(entries)}
    # An entry we could not read may be the "missing" channel: then missing is not proof of absence.
    all_valid = len(channels) == len(entries)
    observations = []
    for cid in requested:
        channel = channels.get(cid)
        if channel is not None:
            observations.append(kick_observation(channel, observed_at))
        elif all_valid:
            observations += unknown([cid], observed_at, NOT_FOUND, "Kick omitted this channel")
        else:
            observations += unknown([cid], observed_at, BAD_BODY, "unreadable channel entries")
    return observations


def kick_observation(channel: _KickChannel, observed_at: datetime) -> Observation:
    cid = str(channel.broadcaster_user_id)
    if not channel.stream.is_live:
        return Observation(cid, ObservationKind.OFFLINE, observed_at)
    # Live without a usable start time (Go's zero time): live all the same, start unknown.
    started_at = kick_start_time(channel.stream.start_time)
    session = "unstarted" if started_at is None else str(int(started_at.timestamp()))
    stream = LiveStream(
        title=channel.stream_title or None,
        category=(channel.category.name or None) if channel.category else None,
        viewers=channel.stream.viewer_count,
        started_at=started_at,
        # The start time is Kick's session key (PLATFORM_APIS.md §6). Never stream.key: that is
        # the broadcaster's secret stream key when the token may read it.
        stream_id=f"{cid}-{session}",
    )
    return Observation(cid, ObservationKind.LIVE, observed_at, stream)


def kick_start_time(value: str | None) -> datetime | None:
    """``start_time`` as an aware datetime; None when absent or Go's zero time (0001-01-01)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Kick is a Go service: an unset time serialises as year 1, not as null.
    return parsed if parsed.year >= 2000 else None


def kick_slug_candidates(handle: str) -> list[str]:
    """The slugs to look up for what a user typed; ChannelNotFound if it cannot be a slug.

    Kick mixes '_' and '-' between a username and its slug (PLATFORM_APIS.md §3.7), so both
    spellings are asked for in the same request.
    """
    slug = handle_from_url(handle, KICK_HOSTS).lower()
    if not KICK_SLUG_RE.match(slug):
        raise ChannelNotFound(f"not a Kick channel name: {handle!r}")
    return unique([slug, slug.replace("_", "-"), slug.replace("-", "_")])
