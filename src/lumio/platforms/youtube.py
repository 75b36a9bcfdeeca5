"""YouTube live status without search.list: candidates from the channel feed, confirmed by videos.list.

See PLATFORM_APIS.md §2: search.list has a tiny daily bucket, so candidate video ids come from the
channel's Atom feed (free; the uploads playlist as an opt-in fallback at 1 unit), and one
``videos.list`` call (50 ids, 1 unit) decides for the whole batch: live means ``actualStartTime`` set
and no ``actualEndTime``. Counts are strings and unknown ids are simply missing from ``items``.

Quota is kept low by memory: a video confirmed as an upload or an ended stream is never asked about
again, so a cycle only confirms what is new in a feed, the videos that are live now (to see them
end, even after the feed lost them) and scheduled streams that are due. Those verdicts outlive the
process: the worker stores them with the channel's detector state (``memo``) and hands them back
(``recall``) to whichever replica polls the channel next.

With a ``quota_gate`` (the worker's pacer, issue 15) every call is granted first: candidates (new
entries, pushed or due scheduled videos: a possible go-live) before re-confirmations of videos
this adapter saw live, which fill the candidates' last call for free. Candidates that would not
fill a call (and were not pushed) are held for the gate's next tick (``candidate_tick``), at which every replica's held
candidates come due together and share calls; they ride free in re-confirmation calls meanwhile.
An id the gate does not grant (or holds) is left for a later cycle; its channel is observed
``quota_deferred`` (unknown, never offline, no error), so a live channel stays live while its
confirmation waits. What was held travels with the channel's detector state (``memo``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Literal, Protocol, TypeVar
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from lumio.kit.clock import Clock, utc_now
from lumio.kit.http import HttpClient, HttpError, HttpResponse, HttpTimeout
from lumio.kit.settings import YouTubeSettings
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
    count_prepaid,
    count_quota,
    count_request,
    saw_rate_limit,
    tallying,
)

logger = logging.getLogger(__name__)

_M = TypeVar("_M", bound=BaseModel)

MAX_IDS_PER_REQUEST = 50
# The feed holds about 15 entries; asking the uploads playlist for as many keeps both sources alike.
FEED_SIZE = 15
CHANNEL_ID_RE = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
# Handles are 3 to 30 letters (any script), digits, underscores, hyphens and dots.
HANDLE_RE = re.compile(r"^[\w.-]{3,30}$")
YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com"})
ATOM = "{http://www.w3.org/2005/Atom}"
YT = "{http://www.youtube.com/xml/schemas/2015}"
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
AUTH_REASONS = frozenset({"keyInvalid", "keyExpired", "forbidden", "accessNotConfigured"})
# Finished verdicts kept per channel: the feed's ~15 entries and those that left it lately (a
# pushed title edit of an older video must not cost a unit either).
KEPT_VERDICTS = 30
# What ``memo`` keeps with a channel's detector state.
FINISHED_VIDEOS, WAITING_VIDEOS = "finished_videos", "waiting_videos"
# Daily quotas reset at midnight Pacific Time (PLATFORM_APIS.md §2.1).
PACIFIC = ZoneInfo("America/Los_Angeles")


# videos.list gives only snippet.categoryId; names would cost a videoCategories.list call
# (quota) per region. These are YouTube's assignable categories, the same in every region.
VIDEO_CATEGORIES = {
    "1": "Film & Animation",
    "2": "Autos & Vehicles",
    "10": "Music",
    "15": "Pets & Animals",
    "17": "Sports",
    "19": "Travel & Events",
    "20": "Gaming",
    "22": "People & Blogs",
    "23": "Comedy",
    "24": "Entertainment",
    "25": "News & Politics",
    "26": "Howto & Style",
    "27": "Education",
    "28": "Science & Technology",
    "29": "Nonprofits & Activism",
}


def category_name(category_id: str | None) -> str | None:
    if not category_id:
        return None
    return VIDEO_CATEGORIES.get(category_id, category_id)


# --- Data API answers (only the fields we read; extra fields are ignored) ---


class _Api(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class _LiveDetails(_Api):
    actual_start_time: AwareDatetime | None = None
    actual_end_time: AwareDatetime | None = None
    scheduled_start_time: AwareDatetime | None = None
    concurrent_viewers: str | None = None


class _VideoSnippet(_Api):
    title: str | None = None
    category_id: str | None = None


class _Video(_Api):
    id: str
    snippet: _VideoSnippet | None = None
    live_streaming_details: _LiveDetails | None = None


class _VideoList(_Api):
    kind: Literal["youtube#videoListResponse"]
    items: list[_Video]


class _PlaylistItemDetails(_Api):
    video_id: str
    video_published_at: AwareDatetime | None = None


class _PlaylistItem(_Api):
    content_details: _PlaylistItemDetails


class _PlaylistItemList(_Api):
    kind: Literal["youtube#playlistItemListResponse"]
    items: list[_PlaylistItem] = []


class _ChannelSnippet(_Api):
    title: str


class _Channel(_Api):
    id: str
    snippet: _ChannelSnippet


class _ChannelList(_Api):
    kind: Literal["youtube#channelListResponse"]
    # channels.list leaves ``items`` out entirely when nothing matched.
    items: list[_Channel] = []


class _ErrorDetail(_Api):
    reason: str = ""


class _ErrorInfo(_Api):
    message: str = ""
    errors: list[_ErrorDetail] = []


class _ErrorBody(_Api):
    error: _ErrorInfo


# --- what a cycle works with ---


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One candidate video from the channel feed (or the uploads playlist)."""

    video_id: str
    published: datetime | None
    updated: datetime | None

    @property
    def freshness(self) -> datetime:
        dates = [d for d in (self.published, self.updated) if d is not None]
        return max(dates, default=datetime.max.replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class _VideoStatus:
    """What videos.list said about one id."""

    stream: LiveStream | None = None
    upcoming: bool = False
    scheduled_start: datetime | None = None


# An upload, an ended stream, or an id videos.list does not know: none of them is live again.
FINISHED = _VideoStatus()
# Not confirmed this cycle: the quota pacer keeps the units for later (unknown, never offline).
QUOTA_DEFERRED = PlatformError("quota_deferred", "videos.list waits for the daily quota's pacing")


@dataclass(slots=True)
class _Upcoming:
    scheduled_start: datetime | None
    checked_at: datetime


class QuotaGate(Protocol):
    """Grants ``videos.list`` calls against the day's quota (the worker's pacer)."""

    async def grant(self, units: int, live: bool) -> int:
        """Up to ``units`` calls that may be sent now (``live``: re-confirmations only)."""
        ...

    def freshness(self) -> timedelta:
        """How long a confirmed video may go unconfirmed now."""
        ...

    def candidate_tick(self, now: datetime) -> datetime | None:
        """When candidates seen now are confirmed, together (None: at once)."""
        ...


@dataclass(slots=True)
class _ChannelMemory:
    """What earlier cycles learnt about a channel's videos, so only news costs quota."""

    # Oldest first (a dict keeps the order), at most KEPT_VERDICTS.
    finished: dict[str, None] = field(default_factory=dict)
    # Entries skipped for their age on first sight, with the freshness they had: a newer
    # ``updated`` later makes them candidates again.
    assumed_finished: dict[str, datetime] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)
    # The live ones this adapter confirmed itself: re-confirmations, not candidates.
    verified: set[str] = field(default_factory=set)
    # Candidates held for a shared tick, so that they fill calls together.
    waiting: dict[str, datetime] = field(default_factory=dict)
    upcoming: dict[str, _Upcoming] = field(default_factory=dict)
    feed_seen: bool = False

    def is_new(self, entry: FeedEntry) -> bool:
        video_id = entry.video_id
        if video_id in self.finished or video_id in self.live or video_id in self.upcoming:
            return False
        assumed = self.assumed_finished.get(video_id)
        return assumed is None or entry.freshness > assumed

    def keep_only(self, video_ids: set[str]) -> None:
        """Forget videos that left the feed; live ones stay, since feeds lag (§2.4), and so do
        finished ones, up to KEPT_VERDICTS."""
        self.assumed_finished = {v: d for v, d in self.assumed_finished.items() if v in video_ids}
        self.waiting = {v: t for v, t in self.waiting.items() if v in video_ids or v in self.live}
        self.upcoming = {v: u for v, u in self.upcoming.items() if v in video_ids}

    def record(self, video_id: str, status: _VideoStatus, now: datetime) -> None:
        self.live.discard(video_id)
        self.verified.discard(video_id)
        self.waiting.pop(video_id, None)
        self.upcoming.pop(video_id, None)
        self.assumed_finished.pop(video_id, None)
        if status.stream is not None:
            self.live.add(video_id)
            self.verified.add(video_id)
        elif status.upcoming:
            self.upcoming[video_id] = _Upcoming(status.scheduled_start, now)
        else:
            self.finish(video_id)

    def finish(self, video_id: str) -> None:
        self.finished[video_id] = None
        while len(self.finished) > KEPT_VERDICTS:
            del self.finished[next(iter(self.finished))]


@dataclass(frozen=True, slots=True)
class _Plan:
    """The videos to confirm for one channel this cycle."""

    channel_id: str
    candidates: tuple[str, ...]
    # Candidate discovery failed: the feed alone cannot say offline.
    error: PlatformError | None = None
    # New entries beyond the per-channel cap wait for the next cycle.
    pending: bool = False


@dataclass(frozen=True, slots=True)
class _Confirmation:
    statuses: dict[str, _VideoStatus]
    failures: dict[str, PlatformError]


class YouTubeAdapter:
    """PlatformAdapter for YouTube. The injected ``client`` belongs to the caller."""

    platform = Platform.YOUTUBE
    batch_size = MAX_IDS_PER_REQUEST

    def __init__(
        self, client: httpx.AsyncClient, config: YouTubeSettings, clock: Clock = utc_now
    ) -> None:
        self.rate_limit: RateLimitInfo | None = None
        self.requests_sent = 0
        self.quota_used = 0
        # Set by the worker: calls are then granted against the day's quota first.
        self.quota_gate: QuotaGate | None = None
        # Every call is a poll (feeds, videos.list) or as cheap (resolve): all go through the lean
        # client (``kit/http.py``, about 25 times less CPU per request than httpx: issue 15).
        self._client = client
        self._http = HttpClient(timeout=config.timeout.total_seconds())
        self._config = config
        self._clock = clock
        self._memory: dict[str, _ChannelMemory] = {}
        self._feed_slots = asyncio.Semaphore(config.feed_concurrency)

    # --- PlatformAdapter ---

    async def observe(
        self, channel_ids: list[str], live_streams: Mapping[str, str] = NO_LIVE_STREAMS
    ) -> PollResult:
        for channel_id, video_id in live_streams.items():
            self._remember_live(channel_id, video_id)
        with tallying() as tally:
            observations = await self._observe_safely(list(dict.fromkeys(channel_ids)))
        return tally.result(observations)

    async def _observe_safely(self, ids: list[str]) -> list[Observation]:
        try:
            return await self._observe(ids)
        except Exception as error:
            # A bug here must not stop the worker's batch; unknown leaves every status as it is.
            logger.exception("YouTube observe failed")
            failure = PlatformError("internal", f"{type(error).__name__}: {error}")
            now = self._clock()
            return [_unknown(i, failure, now) for i in ids]

    async def resolve(self, handle: str) -> ResolvedChannel:
        params = {"part": "snippet", **channel_query(handle)}
        answer = _parse(_ChannelList, await self._api_get("/youtube/v3/channels", params))
        if not answer.items:
            raise ChannelNotFound(handle)
        channel = answer.items[0]
        return ResolvedChannel(channel.id, channel.snippet.title)

    async def aclose(self) -> None:
        # The httpx client is injected and closed by its owner; the lean one is the adapter's.
        self._memory.clear()
        await self._http.aclose()

    def _remember_live(self, channel_id: str, stream_id: str) -> None:
        """Track a video known (e.g. from stored status) to be live, so a fresh adapter confirms
        it even when its feed entry is too old to count as recent; a finished one stays so."""
        memory = self._memory.setdefault(channel_id, _ChannelMemory())
        if stream_id not in memory.finished:
            memory.live.add(stream_id)

    def recall(self, channel_id: str, stored: Mapping[str, object]) -> None:
        """What ``memo`` gave for the channel (kept by the worker, maybe another replica's):
        videos confirmed finished, never asked again, and candidates held for a tick."""
        memory = self._memory.setdefault(channel_id, _ChannelMemory())
        finished = stored.get(FINISHED_VIDEOS)
        for video_id in finished if isinstance(finished, list) else []:
            if isinstance(video_id, str) and video_id not in memory.finished:
                memory.finish(video_id)
                memory.live.discard(video_id)
        waiting = stored.get(WAITING_VIDEOS)
        for video_id, tick in (waiting if isinstance(waiting, dict) else {}).items():
            if isinstance(tick, str) and video_id not in memory.finished:
                memory.waiting.setdefault(video_id, _moment(tick))

    def memo(self, channel_id: str) -> dict[str, object]:
        """What the worker keeps with the channel's detector state for ``recall``."""
        memory = self._memory.get(channel_id) or _ChannelMemory()
        waiting = {v: t.isoformat() for v, t in memory.waiting.items()}
        return {FINISHED_VIDEOS: list(memory.finished), WAITING_VIDEOS: waiting}

    def finished_videos(self, channel_id: str) -> list[str]:
        memory = self._memory.get(channel_id)
        return list(memory.finished) if memory else []

    # --- one cycle ---

    async def _observe(self, ids: list[str]) -> list[Observation]:
        sources = await asyncio.gather(*(self._discover(i) for i in ids))
        now = self._clock()
        plans = [self._plan(i, source, now) for i, source in zip(ids, sources, strict=True)]
        wanted = dict.fromkeys(v for plan in plans for v in plan.candidates)
        granted, deferred = await self._ration(list(wanted), plans)
        confirmation = await self._confirm(granted)
        confirmation.failures.update(dict.fromkeys(deferred, QUOTA_DEFERRED))
        now = self._clock()
        for plan in plans:
            self._remember(plan, confirmation, now)
        return [_decide(plan, confirmation, now) for plan in plans]

    def _plan(
        self, channel_id: str, source: list[FeedEntry] | PlatformError, now: datetime
    ) -> _Plan:
        memory = self._memory.get(channel_id)
        if isinstance(source, PlatformError):
            if source.kind == "not_found":
                self._memory.pop(channel_id, None)
                return _Plan(channel_id, (), source)
            # A video known to be live can still be confirmed without the feed.
            return _Plan(channel_id, tuple(memory.live) if memory else (), source)
        if memory is None:
            memory = self._memory[channel_id] = _ChannelMemory()
        if not memory.feed_seen:
            self._assume_old_finished(memory, source, now)
        memory.keep_only({e.video_id for e in source})
        ordered = sorted(source, key=lambda e: e.freshness, reverse=True)
        new = [e.video_id for e in ordered if memory.is_new(e)]
        taken = new[: self._config.candidates_per_channel]
        due = [v for v, upcoming in memory.upcoming.items() if self._is_due(upcoming, now)]
        candidates = tuple(dict.fromkeys([*memory.live, *due, *taken]))
        return _Plan(channel_id, candidates, pending=len(new) > len(taken))

    def _assume_old_finished(
        self, memory: _ChannelMemory, entries: list[FeedEntry], now: datetime
    ) -> None:
        # Confirming all 15 entries of every channel would cost a unit per 50 videos each time a
        # replica meets a channel; an entry nobody touched for days is an old upload.
        for entry in entries:
            if now - entry.freshness > self._config.recent_window:
                memory.assumed_finished[entry.video_id] = entry.freshness
        memory.feed_seen = True

    def _is_due(self, upcoming: _Upcoming, now: datetime) -> bool:
        config = self._config
        if now - upcoming.checked_at >= config.upcoming_recheck:
            return True
        start = upcoming.scheduled_start
        if start is None:
            return False
        near = start - config.upcoming_lead <= now <= start + config.upcoming_overdue
        # Near its start, as often as live videos are re-confirmed (every cycle without a gate).
        floor = self.quota_gate.freshness() if self.quota_gate else timedelta(0)
        return near and now - upcoming.checked_at >= floor

    # --- the quota ---

    async def _ration(self, wanted: list[str], plans: list[_Plan]) -> tuple[list[str], list[str]]:
        """The ids to confirm now, candidates first, and those left for later (see the module)."""
        gate = self.quota_gate
        if gate is None:
            return wanted, []
        now = self._clock()
        owners = {
            v: m for p in plans if (m := self._memory.get(p.channel_id)) for v in p.candidates
        }
        fresh = [v for v in wanted if v not in owners or v not in owners[v].verified]
        again = [v for v in wanted if v in owners and v in owners[v].verified]
        fresh, held = _pack(fresh, owners, now, gate.candidate_tick(now))
        calls = await gate.grant(_calls(len(fresh)), live=False)
        taken = fresh[: calls * MAX_IDS_PER_REQUEST]
        # The last candidate call has room: re-confirmations ride along at no cost.
        room = calls * MAX_IDS_PER_REQUEST - len(taken)
        riders, again = again[:room], again[room:]
        more = await gate.grant(_calls(len(again)), live=True)
        kept = again[: more * MAX_IDS_PER_REQUEST]
        # ... and held candidates in the re-confirmations' room.
        spare = more * MAX_IDS_PER_REQUEST - len(kept) if more else 0
        passengers, held = held[:spare], held[spare:]
        deferred = fresh[len(taken) :] + held + again[len(kept) :]
        return [*taken, *riders, *kept, *passengers], deferred

    def _remember(self, plan: _Plan, confirmation: _Confirmation, now: datetime) -> None:
        memory = self._memory.get(plan.channel_id)
        if memory is None:
            return
        for video_id in plan.candidates:
            # An id whose request failed is simply asked about again next cycle.
            status = confirmation.statuses.get(video_id)
            if status is not None:
                memory.record(video_id, status, now)

    # --- candidates ---

    async def _discover(self, channel_id: str) -> list[FeedEntry] | PlatformError:
        async with self._feed_slots:
            try:
                return await self._read_feed(channel_id)
            except PlatformError as error:
                if error.kind == "not_found" or not self._config.uploads_fallback:
                    return error
                feed_error = error
            try:
                return await self._read_uploads(channel_id)
            except PlatformError as error:
                return error if error.kind == "quota_exhausted" else feed_error

    async def _read_feed(self, channel_id: str) -> list[FeedEntry]:
        url = self._config.feed_base + "/feeds/videos.xml"
        response = await self._send(url, {"channel_id": channel_id})
        if response.status_code == httpx.codes.NOT_FOUND:
            raise PlatformError("not_found", f"no YouTube channel {channel_id} (feed 404)")
        if response.status_code != httpx.codes.OK:
            raise _status_error("feed", response)
        return parse_feed(response.content)

    async def _read_uploads(self, channel_id: str) -> list[FeedEntry]:
        if not CHANNEL_ID_RE.match(channel_id):
            raise PlatformError("not_found", f"{channel_id} is not a channel id")
        params = {
            "part": "contentDetails",
            "playlistId": "UU" + channel_id[2:],
            "maxResults": str(FEED_SIZE),
        }
        try:
            body = await self._api_get("/youtube/v3/playlistItems", params)
        except PlatformError as error:
            if error.kind == "http_404":
                raise PlatformError("not_found", f"no uploads playlist for {channel_id}") from error
            raise
        items = _parse(_PlaylistItemList, body).items
        return [_entry_of(item.content_details) for item in items]

    # --- confirmation ---

    async def _confirm(self, video_ids: list[str]) -> _Confirmation:
        statuses: dict[str, _VideoStatus] = {}
        failures: dict[str, PlatformError] = {}
        quota_error: PlatformError | None = None
        for chunk in _chunks(video_ids, MAX_IDS_PER_REQUEST):
            if quota_error is not None:
                # The day's quota is gone: more calls would only be refused.
                failures.update(dict.fromkeys(chunk, quota_error))
                continue
            if self.quota_gate is not None:
                # Granted, hence already counted in the shared budget.
                count_prepaid(1)
            try:
                found = await self._videos(chunk)
            except PlatformError as error:
                failures.update(dict.fromkeys(chunk, error))
                quota_error = error if error.kind == "quota_exhausted" else None
                continue
            statuses.update({v: found.get(v, FINISHED) for v in chunk})
        return _Confirmation(statuses, failures)

    async def _videos(self, video_ids: list[str]) -> dict[str, _VideoStatus]:
        params = {"part": "snippet,liveStreamingDetails", "id": ",".join(video_ids)}
        answer = _parse(_VideoList, await self._api_get("/youtube/v3/videos", params))
        return {video.id: _status_of(video) for video in answer.items}

    # --- HTTP ---

    async def _api_get(self, path: str, params: dict[str, str]) -> bytes:
        # Every Data API call costs at least a unit, refused ones included (§2.1).
        self.quota_used += 1
        count_quota(1)
        response = await self._send(
            self._config.api_base + path, {**params, "key": self._config.api_key}
        )
        if response.status_code == httpx.codes.OK:
            self.rate_limit = None
            return response.content
        error = _api_error(path, response, self._clock())
        if error.kind == "quota_exhausted":
            self.rate_limit = _quota_rate_limit(self._clock())
            saw_rate_limit(self.rate_limit)
        raise error

    async def _send(self, url: str, params: dict[str, str]) -> HttpResponse:
        self.requests_sent += 1
        count_request()
        try:
            return await self._http.request("GET", url, params=params)
        except HttpTimeout as error:
            # The message names the path only: the query carries the API key.
            raise PlatformError("timeout", f"GET {url}: {type(error).__name__}") from error
        except HttpError as error:
            raise PlatformError("network", f"GET {url}: {type(error).__name__}") from error


# --- pure helpers ---


def parse_feed(body: bytes) -> list[FeedEntry]:
    """The entries of a channel's Atom feed; PlatformError("bad_body") if it is not one."""
    try:
        # The stdlib parser never fetches external entities and expat >= 2.4 caps entity
        # expansion, so a hostile feed cannot reach files or blow up memory.
        root = ElementTree.fromstring(body)  # noqa: S314
    except ElementTree.ParseError as error:
        raise PlatformError("bad_body", f"feed is not XML: {error}") from error
    if root.tag != f"{ATOM}feed":
        raise PlatformError("bad_body", f"feed root is {root.tag[:80]}, not an Atom feed")
    entries = (_feed_entry(element) for element in root.iter(f"{ATOM}entry"))
    return [entry for entry in entries if entry is not None]


def _feed_entry(element: ElementTree.Element) -> FeedEntry | None:
    video_id = (element.findtext(f"{YT}videoId") or "").strip()
    if not video_id:
        return None
    published = _feed_date(element.findtext(f"{ATOM}published"))
    return FeedEntry(video_id, published, _feed_date(element.findtext(f"{ATOM}updated")))


def _feed_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _entry_of(details: _PlaylistItemDetails) -> FeedEntry:
    return FeedEntry(details.video_id, details.video_published_at, None)


def _status_of(video: _Video) -> _VideoStatus:
    details = video.live_streaming_details
    if details is None:
        return FINISHED
    if details.actual_start_time is not None and details.actual_end_time is None:
        return _VideoStatus(stream=_live_stream(video, details.actual_start_time))
    if details.actual_start_time is None and details.actual_end_time is None:
        return _VideoStatus(upcoming=True, scheduled_start=details.scheduled_start_time)
    return FINISHED


def _live_stream(video: _Video, started_at: datetime) -> LiveStream:
    snippet = video.snippet or _VideoSnippet()
    details = video.live_streaming_details or _LiveDetails()
    return LiveStream(
        title=snippet.title or None,
        category=category_name(snippet.category_id),
        viewers=_viewers(details.concurrent_viewers),
        started_at=started_at.astimezone(UTC),
        stream_id=video.id,
    )


def _viewers(text: str | None) -> int | None:
    # A hidden or untracked count is absent; it is not zero viewers.
    if text is None or not text.strip().isdigit():
        return None
    return int(text)


def _decide(plan: _Plan, confirmation: _Confirmation, now: datetime) -> Observation:
    streams = [
        status.stream
        for video_id in plan.candidates
        if (status := confirmation.statuses.get(video_id)) is not None and status.stream
    ]
    if streams:
        # Two broadcasts at once: the newest one is the channel's current stream.
        stream = max(streams, key=lambda s: (s.started_at, s.stream_id))
        return Observation(plan.channel_id, ObservationKind.LIVE, now, stream)
    if plan.error is not None:
        return _unknown(plan.channel_id, plan.error, now)
    failed = [confirmation.failures[v] for v in plan.candidates if v in confirmation.failures]
    if failed:
        return _unknown(plan.channel_id, failed[0], now)
    if plan.pending:
        pending = PlatformError("candidates_pending", "new feed entries wait for the next cycle")
        return _unknown(plan.channel_id, pending, now)
    return Observation(plan.channel_id, ObservationKind.OFFLINE, now)


def _unknown(channel_id: str, error: PlatformError, now: datetime) -> Observation:
    return Observation(
        channel_id, ObservationKind.UNKNOWN, now, error_kind=error.kind, error=str(error)
    )


def _parse(model: type[_M], body: bytes) -> _M:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        summary = f"{error.error_count()} problem(s), first: {error.errors()[0]['msg']}"
        raise PlatformError("bad_body", f"unexpected {model.__name__} body: {summary}") from error


def _error_of(body: bytes) -> tuple[str, str]:
    """(reason, message) of a Google error body; empty strings when it is not one."""
    try:
        error = _ErrorBody.model_validate_json(body).error
    except ValidationError:
        return "", ""
    reason = error.errors[0].reason if error.errors else ""
    return reason, error.message


def _api_error(path: str, response: HttpResponse, now: datetime) -> PlatformError:
    status = response.status_code
    reason, message = _error_of(response.content)
    text = f"GET {path} answered {status} {reason}: {message[:200]}"
    if status == httpx.codes.FORBIDDEN and reason in QUOTA_REASONS:
        return PlatformError("quota_exhausted", text, _until_quota_reset(now))
    if status == httpx.codes.TOO_MANY_REQUESTS or reason in RATE_REASONS:
        return PlatformError("rate_limited", text, _retry_after(response))
    if status == httpx.codes.UNAUTHORIZED or reason in AUTH_REASONS:
        return PlatformError("auth", text)
    return _status_error(path, response, text)


def _status_error(what: str, response: HttpResponse, text: str | None = None) -> PlatformError:
    status = response.status_code
    message = text or f"{what} answered {status}"
    if status == httpx.codes.TOO_MANY_REQUESTS:
        return PlatformError("rate_limited", message, _retry_after(response))
    if status >= 500:
        return PlatformError("http_5xx", message)
    return PlatformError(f"http_{status}", message)


def _retry_after(response: HttpResponse) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _next_quota_reset(now: datetime) -> datetime:
    pacific = now.astimezone(PACIFIC)
    midnight = datetime.combine(pacific.date() + timedelta(days=1), time(), tzinfo=PACIFIC)
    return midnight.astimezone(UTC)


def _until_quota_reset(now: datetime) -> float:
    return (_next_quota_reset(now) - now).total_seconds()


def _quota_rate_limit(now: datetime) -> RateLimitInfo:
    return RateLimitInfo(
        remaining=0,
        reset_at=_next_quota_reset(now).timestamp(),
        retry_after=_until_quota_reset(now),
    )


def _pack(
    fresh: list[str], owners: Mapping[str, _ChannelMemory], now: datetime, tick: datetime | None
) -> tuple[list[str], list[str]]:
    """(candidates to confirm now, those held for ``tick``): one at a time they would cost a
    call each, so they wait for the tick at which every replica's held candidates come due
    together, unless the batch fills a call or holds one whose tick has come, or one handed in as
    live (a push hint, or a stored stream this adapter has not confirmed yet): push is for speed."""
    if tick is None or len(fresh) >= MAX_IDS_PER_REQUEST:
        return fresh, []
    if any(v in owners and v in owners[v].live for v in fresh):
        return fresh, []
    ticks = [owners[v].waiting.get(v) for v in fresh if v in owners]
    if any(t is not None and t <= now for t in ticks):
        return fresh, []
    for video_id in fresh:
        if video_id in owners:
            owners[video_id].waiting.setdefault(video_id, tick)
    return [], fresh


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _calls(ids: int) -> int:
    return -(-ids // MAX_IDS_PER_REQUEST)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def channel_query(text: str) -> dict[str, str]:
    """The channels.list filter for what a user typed: a UC… id, an @handle or a youtube.com URL."""
    value = text.strip()
    if "/" in value or value.lower().startswith(("http:", "https:")):
        return _url_query(value, text)
    if CHANNEL_ID_RE.match(value):
        return {"id": value}
    return {"forHandle": _handle(value.removeprefix("@"), text)}


def _url_query(value: str, text: str) -> dict[str, str]:
    parts = urlsplit(value if "://" in value else "https://" + value)
    if (parts.hostname or "").lower() not in YOUTUBE_HOSTS:
        raise ChannelNotFound(text)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if segments and segments[0].startswith("@"):
        return {"forHandle": _handle(segments[0][1:], text)}
    if len(segments) < 2:
        raise ChannelNotFound(text)
    kind, name = segments[0].lower(), segments[1]
    if kind == "channel" and CHANNEL_ID_RE.match(name):
        return {"id": name}
    if kind == "user":
        return {"forUsername": name}
    if kind == "c":
        # Legacy custom URLs have no API lookup; most now equal the channel's handle.
        return {"forHandle": _handle(name, text)}
    raise ChannelNotFound(text)


def _handle(name: str, text: str) -> str:
    if not HANDLE_RE.match(name):
        raise ChannelNotFound(text)
    return "@" + name
