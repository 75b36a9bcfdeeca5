"""A strict, stateful fake of the YouTube surfaces Lumio touches (PLATFORM_APIS.md §2 and §6).

Serves the channel Atom feed and the Data API's ``videos``, ``playlistItems``, ``channels`` and
``search`` lists with the real shapes: string counts, missing ids left out, ``items`` absent from an
empty channels answer, Google error bodies, at most 50 ids, a key on every call and a daily quota
that resets at midnight Pacific Time and answers 403 ``quotaExceeded`` when spent (``search`` costs
100 units, the rest 1; refused requests still cost). Tests drive it through the Python methods of
``FakeYouTubeState``; a simulator in another process uses the JSON routes under ``/_control/``.

Where the real wording is not documented (the error for more than 50 ids) the fake picks a Google
shaped 400 body; clients should rely on the status and ``reason`` only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import itertools
import secrets
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lumio.dev.fakes.push import Delivery, PushSender, Signing, SwitchIn

Clock = Callable[[], datetime]
FailMode = Literal["5xx", "429", "garbage", "timeout"]
Endpoint = Literal["feed", "videos", "playlistItems", "channels", "search"]
VideoState = Literal["none", "upcoming", "live", "ended"]

PACIFIC = ZoneInfo("America/Los_Angeles")
DEFAULT_API_KEY = "fake-youtube-key"
MAX_IDS = 50
FEED_SIZE = 15
SEARCH_COST = 100
VIDEO_PARTS = frozenset(
    {"id", "snippet", "liveStreamingDetails", "statistics", "contentDetails", "status"}
)
PLAYLIST_ITEM_PARTS = frozenset({"id", "snippet", "contentDetails", "status"})
CHANNEL_PARTS = frozenset({"id", "snippet", "contentDetails", "statistics", "status"})
SEARCH_PARTS = frozenset({"id", "snippet"})
EVENT_TYPES = frozenset({"live", "upcoming", "completed"})
QUOTA_MESSAGE = (
    "The request cannot be completed because you have exceeded your "
    '<a href="/youtube/v3/getting-started#quota">quota</a>.'
)
ATOM_CONTENT_TYPE = "application/atom+xml; charset=UTF-8"


def utc_now() -> datetime:
    return datetime.now(UTC)


class FakeLookupError(LookupError):
    """A channel or video the fake does not hold (404 on the control interface)."""


class FakeStateError(ValueError):
    """A control call that does not fit the video's state, e.g. ending a stream twice (409)."""


@dataclass(slots=True)
class FakeVideo:
    video_id: str
    channel_id: str
    title: str
    published_at: datetime
    updated_at: datetime
    category_id: str = "20"
    description: str = ""
    # A broadcast has liveStreamingDetails; a plain upload never does.
    broadcast: bool = False
    scheduled_start: datetime | None = None
    actual_start: datetime | None = None
    actual_end: datetime | None = None
    viewers: int | None = None
    in_feed: bool = True

    @property
    def state(self) -> VideoState:
        if not self.broadcast:
            return "none"
        if self.actual_end is not None:
            return "ended"
        return "live" if self.actual_start is not None else "upcoming"

    def to_json(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "channel_id": self.channel_id,
            "title": self.title,
            "state": self.state,
            "category_id": self.category_id,
            "viewers": self.viewers,
            "in_feed": self.in_feed,
            "published_at": _rfc3339(self.published_at),
            "scheduled_start": _rfc3339_or_none(self.scheduled_start),
            "actual_start": _rfc3339_or_none(self.actual_start),
            "actual_end": _rfc3339_or_none(self.actual_end),
        }


@dataclass(slots=True)
class FakeChannel:
    channel_id: str
    handle: str | None
    title: str
    created_at: datetime
    video_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "handle": self.handle,
            "title": self.title,
            "video_ids": list(self.video_ids),
        }


@dataclass(frozen=True, slots=True)
class FakeStats:
    # Requests per endpoint, injected failures and refusals included.
    requests: dict[str, int]
    quota_used: int
    quota_limit: int
    # How many ids each answered videos.list call carried.
    video_batch_sizes: list[int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Failure:
    mode: FailMode
    remaining: int
    endpoint: Endpoint | None
    channel_id: str | None
    hang_seconds: float

    def matches(self, endpoint: Endpoint, channel_id: str | None) -> bool:
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        return self.channel_id is None or self.channel_id == channel_id


class FakeYouTubeState:
    """Channels, videos, quota and injected failures; safe to drive from another thread."""

    def __init__(
        self,
        clock: Clock = utc_now,
        api_key: str = DEFAULT_API_KEY,
        quota_per_day: int = 10_000,
    ) -> None:
        self.clock = clock
        self.api_key = api_key
        self.quota_per_day = quota_per_day
        # The server thread reads while a test or simulator writes.
        self.lock = threading.RLock()
        self.channels: dict[str, FakeChannel] = {}
        self.videos: dict[str, FakeVideo] = {}
        self.requests: Counter[str] = Counter()
        self.video_batch_sizes: list[int] = []
        self._failures: list[_Failure] = []
        self._quota_day = self._today()
        self._quota_used = 0
        self._ids = itertools.count(1)
        # The WebSub hub: active subscriptions by (callback, topic), and the sender.
        self.hub_subscriptions: dict[tuple[str, str], HubSubscription] = {}
        # Every (un)subscribe request the hub took, in order, as (mode, callback, topic).
        self.hub_requests: list[tuple[str, str, str]] = []
        # A hub may grant a shorter lease than asked for (PuSH 0.4 §5.1); None grants the ask.
        self.hub_max_lease_seconds: int | None = None
        # False: the hub takes requests (202) but never checks intent, as a hub that silently
        # stopped would (PLATFORM_APIS.md §2.5); nothing it holds changes.
        self.hub_verifies = True
        self.push = PushSender()

    # --- the WebSub hub (PLATFORM_APIS.md §2.5) ---

    def hub_request(self, form: dict[str, str]) -> None:
        """A (un)subscribe request: the hub checks intent with a GET to the callback, later."""
        mode, callback, topic = form["hub.mode"], form["hub.callback"], form["hub.topic"]
        lease = int(form.get("hub.lease_seconds") or HUB_LEASE_SECONDS)
        with self.lock:
            self.hub_requests.append((mode, callback, topic))
            if self.hub_max_lease_seconds is not None:
                lease = min(lease, self.hub_max_lease_seconds)
            if not self.hub_verifies:
                return
        challenge = secrets.token_urlsafe(16)
        query = urlencode({"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge,
                           "hub.lease_seconds": str(lease)})  # fmt: skip
        separator = "&" if "?" in callback else "?"
        delivery = Delivery(f"{callback}{separator}{query}", {}, b"", "GET")
        wanted = HubSubscription(callback, topic, form.get("hub.secret", ""), lease)

        def confirmed(answer: Any) -> None:
            if answer is None or not 200 <= answer.status_code < 300 or answer.text != challenge:
                return
            with self.lock:
                if mode == "subscribe":
                    self.hub_subscriptions[(callback, topic)] = wanted
                else:
                    self.hub_subscriptions.pop((callback, topic), None)

        self.push.verify(lambda _: delivery, confirmed)

    def _publish(self, video: FakeVideo) -> None:
        """Notify the topic's subscribers of a new or changed video, signed with their secret."""
        channel = self.channels.get(video.channel_id)
        if channel is None:
            return
        topic = f"{HUB_TOPIC}?channel_id={channel.channel_id}"
        body = render_feed(channel, [video]).encode()
        for subscription in self.hub_subscriptions.values():
            if subscription.topic == topic:
                self.push.notify(_hub_builder(subscription, body), f"video:{video.video_id}")

    # --- control: channels and videos ---

    def add_channel(
        self, channel_id: str | None = None, handle: str | None = None, title: str | None = None
    ) -> FakeChannel:
        with self.lock:
            number = next(self._ids)
            channel_id = channel_id or f"UCfake{number:018d}"
            name = title or f"Channel {number}"
            channel = FakeChannel(channel_id, handle, name, self.clock())
            self.channels[channel_id] = channel
            return channel

    def remove_channel(self, channel_id: str) -> None:
        with self.lock:
            channel = self._channel(channel_id)
            for video_id in channel.video_ids:
                self.videos.pop(video_id, None)
            del self.channels[channel_id]

    def upload(
        self, channel_id: str, title: str = "An upload", published_at: datetime | None = None
    ) -> FakeVideo:
        """A plain video (no liveStreamingDetails)."""
        with self.lock:
            video = self._add_video(channel_id, title, published_at or self.clock())
            self._publish(video)
            return video

    def schedule_stream(
        self, channel_id: str, scheduled_start: datetime, title: str = "Scheduled stream"
    ) -> FakeVideo:
        """An upcoming broadcast; it is in the feed before it starts (Red-DiscordBot#3691)."""
        with self.lock:
            video = self._add_video(channel_id, title, self.clock())
            video.broadcast = True
            video.scheduled_start = scheduled_start
            self._publish(video)
            return video

    def go_live(
        self,
        channel_id: str,
        title: str | None = None,
        viewers: int | None = 0,
        category_id: str = "20",
        video_id: str | None = None,
        in_feed: bool = True,
    ) -> FakeVideo:
        """Start the scheduled ``video_id``, or a new broadcast that appears in the feed."""
        with self.lock:
            now = self.clock()
            if video_id is None:
                video = self._add_video(channel_id, title or "Live now", now)
                video.broadcast = True
            else:
                video = self._video(video_id)
                if video.channel_id != channel_id or video.state != "upcoming":
                    raise FakeStateError(f"{video_id} is not an upcoming stream of {channel_id}")
                video.title = title or video.title
            video.actual_start = now
            video.viewers = viewers
            video.category_id = category_id
            video.in_feed = in_feed
            video.updated_at = now
            self._publish(video)
            return video

    def end_stream(self, channel_id: str, video_id: str | None = None) -> FakeVideo:
        """End ``video_id``, or the channel's newest live broadcast."""
        with self.lock:
            video = self._video(video_id) if video_id else self._newest_live(channel_id)
            if video.channel_id != channel_id or video.state != "live":
                raise FakeStateError(f"{video.video_id} is not live on {channel_id}")
            video.actual_end = self.clock()
            # YouTube stops tracking concurrent viewers once the broadcast is over.
            video.viewers = None
            video.updated_at = video.actual_end
            self._publish(video)
            return video

    def update_video(
        self,
        video_id: str,
        title: str | None = None,
        viewers: int | None = None,
        category_id: str | None = None,
        in_feed: bool | None = None,
    ) -> FakeVideo:
        with self.lock:
            video = self._video(video_id)
            video.title = title if title is not None else video.title
            video.viewers = viewers if viewers is not None else video.viewers
            video.category_id = category_id or video.category_id
            video.in_feed = in_feed if in_feed is not None else video.in_feed
            video.updated_at = self.clock()
            if title is not None:
                self._publish(video)
            return video

    # --- control: failures, quota, stats ---

    def fail_next(
        self,
        count: int,
        mode: FailMode,
        endpoint: Endpoint | None = None,
        channel_id: str | None = None,
        hang_seconds: float = 1.0,
    ) -> None:
        """Fail the next ``count`` matching requests (a feed request matches its channel_id)."""
        with self.lock:
            self._failures.append(_Failure(mode, count, endpoint, channel_id, hang_seconds))

    def exhaust_quota(self) -> None:
        with self.lock:
            self._roll_quota_day()
            self._quota_used = self.quota_per_day

    def reset_quota(self) -> None:
        with self.lock:
            self._quota_used = 0

    def stats(self) -> FakeStats:
        with self.lock:
            self._roll_quota_day()
            return FakeStats(
                requests=dict(self.requests),
                quota_used=self._quota_used,
                quota_limit=self.quota_per_day,
                video_batch_sizes=list(self.video_batch_sizes),
            )

    # --- used by the routes ---

    def begin(self, endpoint: Endpoint, channel_id: str | None) -> _Failure | None:
        """Count a request; the injected failure it must suffer, if any."""
        with self.lock:
            self.requests[endpoint] += 1
            for failure in self._failures:
                if failure.matches(endpoint, channel_id):
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                    return failure
            return None

    def charge(self, units: int) -> bool:
        """Spend ``units`` of today's quota; False (nothing spent) when they are not left."""
        with self.lock:
            self._roll_quota_day()
            if self._quota_used + units > self.quota_per_day:
                return False
            self._quota_used += units
            return True

    def feed_videos(self, channel_id: str) -> list[FakeVideo]:
        channel = self._channel(channel_id)
        videos = [self.videos[v] for v in channel.video_ids if self.videos[v].in_feed]
        return sorted(videos, key=lambda v: v.published_at, reverse=True)[:FEED_SIZE]

    def uploads(self, channel_id: str) -> list[FakeVideo]:
        videos = [self.videos[v] for v in self._channel(channel_id).video_ids]
        return sorted(videos, key=lambda v: v.published_at, reverse=True)

    def channel_by_handle(self, handle: str) -> FakeChannel | None:
        wanted = handle.removeprefix("@").lower()
        for channel in self.channels.values():
            if channel.handle and channel.handle.removeprefix("@").lower() == wanted:
                return channel
        return None

    # --- internals ---

    def _add_video(self, channel_id: str, title: str, published_at: datetime) -> FakeVideo:
        channel = self._channel(channel_id)
        video_id = f"vid{next(self._ids):08d}"
        video = FakeVideo(video_id, channel_id, title, published_at, published_at)
        self.videos[video_id] = video
        channel.video_ids.append(video_id)
        return video

    def _channel(self, channel_id: str) -> FakeChannel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise FakeLookupError(f"no channel {channel_id}")
        return channel

    def _video(self, video_id: str) -> FakeVideo:
        video = self.videos.get(video_id)
        if video is None:
            raise FakeLookupError(f"no video {video_id}")
        return video

    def _newest_live(self, channel_id: str) -> FakeVideo:
        live = [v for v in self.uploads(channel_id) if v.state == "live"]
        if not live:
            raise FakeStateError(f"{channel_id} is not live")
        return live[0]

    def _today(self) -> date:
        return self.clock().astimezone(PACIFIC).date()

    def _roll_quota_day(self) -> None:
        today = self._today()
        if today != self._quota_day:
            self._quota_day, self._quota_used = today, 0


# --- Google error bodies ---


class _ApiError(Exception):
    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        domain: str = "youtube.parameter",
        location: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.domain, self.location = domain, location

    def response(self) -> JSONResponse:
        detail: dict[str, str] = {
            "message": self.message,
            "domain": self.domain,
            "reason": self.reason,
        }
        if self.location:
            detail |= {"locationType": "parameter", "location": self.location}
        body = {"error": {"code": self.code, "message": self.message, "errors": [detail]}}
        return JSONResponse(body, status_code=self.code)


def _quota_exceeded() -> _ApiError:
    return _ApiError(403, "quotaExceeded", QUOTA_MESSAGE, domain="youtube.quota")


def _check_key(state: FakeYouTubeState, params: QueryParams) -> None:
    key = params.get("key")
    if not key:
        message = "The request is missing a valid API key."
        raise _ApiError(403, "forbidden", message, domain="global")
    if key != state.api_key:
        message = "API key not valid. Please pass a valid API key."
        raise _ApiError(400, "keyInvalid", message, domain="usageLimits")


def _parts(params: QueryParams, allowed: frozenset[str]) -> set[str]:
    raw = params.get("part")
    if not raw:
        raise _ApiError(400, "required", "Required parameter: part", "global", "part")
    parts = {p.strip() for p in raw.split(",")}
    for part in sorted(parts):
        if part not in allowed:
            raise _ApiError(400, "unknownPart", part, "youtube.part", "part")
    return parts


def _id_list(params: QueryParams, name: str) -> list[str] | None:
    values = params.getlist(name)
    if not values:
        return None
    ids = [i.strip() for value in values for i in value.split(",") if i.strip()]
    if len(ids) > MAX_IDS:
        message = f"The request specifies more than {MAX_IDS} values for the {name} parameter."
        raise _ApiError(400, "invalidFilters", message, location=name)
    return list(dict.fromkeys(ids))


def _max_results(params: QueryParams, default: int = 5) -> int:
    raw = params.get("maxResults")
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > MAX_IDS:
        message = f"Invalid value '{raw}'. Values must be within the range: [0, {MAX_IDS}]"
        raise _ApiError(400, "invalidParameter", message, location="maxResults")
    return int(raw)


def _page_offset(params: QueryParams) -> int:
    token = params.get("pageToken")
    if token is None:
        return 0
    if not token.startswith("FAKE") or not token[4:].isdigit():
        raise _ApiError(400, "invalidPageToken", "The request specifies an invalid page token.")
    return int(token[4:])


def _no_filter(expected: str) -> _ApiError:
    message = f"No filter selected. Expected one of: {expected}"
    return _ApiError(400, "missingRequiredParameter", message)


def _list_response(
    kind: str, items: list[dict[str, Any]], total: int | None = None, next_page: str | None = None
) -> JSONResponse:
    total = len(items) if total is None else total
    body: dict[str, Any] = {"kind": kind, "etag": f"etag-{kind}-{total}"}
    if next_page is not None:
        body["nextPageToken"] = next_page
    body["items"] = items
    body["pageInfo"] = {"totalResults": total, "resultsPerPage": len(items)}
    return JSONResponse(body)


# --- Data API lists ---


def _videos(state: FakeYouTubeState, params: QueryParams) -> JSONResponse:
    parts = _parts(params, VIDEO_PARTS)
    ids = _id_list(params, "id")
    if ids is None:
        raise _no_filter("chart, id, myRating")
    state.video_batch_sizes.append(len(ids))
    found = [state.videos[i] for i in ids if i in state.videos]
    return _list_response("youtube#videoListResponse", [_video_json(v, parts) for v in found])


def _playlist_items(state: FakeYouTubeState, params: QueryParams) -> JSONResponse:
    parts = _parts(params, PLAYLIST_ITEM_PARTS)
    playlist_id = params.get("playlistId")
    if not playlist_id:
        raise _no_filter("id, playlistId")
    limit, offset = _max_results(params), _page_offset(params)
    channel_id = "UC" + playlist_id[2:] if playlist_id.startswith("UU") else ""
    if channel_id not in state.channels:
        message = "The playlist identified with the request's <code>playlistId</code> parameter cannot be found."
        raise _ApiError(404, "playlistNotFound", message, "youtube.playlistItem", "playlistId")
    videos = state.uploads(channel_id)
    page = videos[offset : offset + limit]
    items = [_playlist_item_json(v, playlist_id, offset + n, parts) for n, v in enumerate(page)]
    next_page = f"FAKE{offset + limit}" if offset + limit < len(videos) else None
    return _list_response("youtube#playlistItemListResponse", items, len(videos), next_page)


def _channels(state: FakeYouTubeState, params: QueryParams) -> JSONResponse:
    parts = _parts(params, CHANNEL_PARTS)
    filters = [name for name in ("id", "forHandle", "forUsername") if name in params]
    if not filters:
        raise _no_filter("forHandle, forUsername, id, managedByMe, mine")
    if len(filters) > 1:
        message = "Incompatible parameters specified in the request: " + ", ".join(filters)
        raise _ApiError(400, "incompatibleParameters", message)
    found = _find_channels(state, params, filters[0])
    body: dict[str, Any] = {
        "kind": "youtube#channelListResponse",
        "etag": f"etag-channels-{len(found)}",
        "pageInfo": {"totalResults": len(found), "resultsPerPage": 5},
    }
    if found:
        # The real API leaves ``items`` out altogether when nothing matched.
        body["items"] = [_channel_json(c, parts) for c in found]
    return JSONResponse(body)


def _find_channels(state: FakeYouTubeState, params: QueryParams, name: str) -> list[FakeChannel]:
    if name == "id":
        ids = _id_list(params, "id") or []
        return [state.channels[i] for i in ids if i in state.channels]
    # Lumio's fake keeps usernames and handles in one namespace.
    channel = state.channel_by_handle(params.get(name, ""))
    return [channel] if channel else []


def _search(state: FakeYouTubeState, params: QueryParams) -> JSONResponse:
    _parts(params, SEARCH_PARTS)
    event_type = params.get("eventType")
    if event_type is not None and params.get("type") != "video":
        message = "Request contains an invalid argument: eventType requires type=video."
        raise _ApiError(400, "invalidSearchFilter", message, "youtube.search", "type")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise _ApiError(400, "invalidEventType", f"Invalid eventType '{event_type}'.")
    limit = _max_results(params)
    channel_id = params.get("channelId")
    videos = [
        v
        for v in state.videos.values()
        if (channel_id is None or v.channel_id == channel_id)
        and (event_type is None or _event_type(v) == event_type)
    ]
    videos.sort(key=lambda v: v.published_at, reverse=True)
    items = [_search_json(v) for v in videos[:limit]]
    return _list_response("youtube#searchListResponse", items, len(videos))


def _event_type(video: FakeVideo) -> str:
    return {"live": "live", "upcoming": "upcoming", "ended": "completed"}.get(video.state, "none")


# --- resource shapes ---


def _video_json(video: FakeVideo, parts: set[str]) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": "youtube#video", "etag": _etag(video), "id": video.video_id}
    if "snippet" in parts:
        item["snippet"] = _video_snippet(video)
    if "statistics" in parts:
        item["statistics"] = {
            "viewCount": "0",
            "likeCount": "0",
            "favoriteCount": "0",
            "commentCount": "0",
        }
    if "liveStreamingDetails" in parts and video.broadcast:
        item["liveStreamingDetails"] = _live_details(video)
    return item


def _video_snippet(video: FakeVideo) -> dict[str, Any]:
    return {
        "publishedAt": _rfc3339(video.published_at),
        "channelId": video.channel_id,
        "title": video.title,
        "description": video.description,
        "thumbnails": {"medium": _thumbnail(video.video_id)},
        "channelTitle": "",
        "categoryId": video.category_id,
        "liveBroadcastContent": video.state if video.state in ("live", "upcoming") else "none",
    }


def _live_details(video: FakeVideo) -> dict[str, str]:
    details: dict[str, str] = {}
    if video.actual_start is not None:
        details["actualStartTime"] = _rfc3339(video.actual_start)
    if video.actual_end is not None:
        details["actualEndTime"] = _rfc3339(video.actual_end)
    if video.scheduled_start is not None:
        details["scheduledStartTime"] = _rfc3339(video.scheduled_start)
    if video.state == "live":
        # A string, and only while live with a visible count (§2.3).
        if video.viewers is not None:
            details["concurrentViewers"] = str(video.viewers)
        details["activeLiveChatId"] = f"chat-{video.video_id}"
    return details


def _playlist_item_json(
    video: FakeVideo, playlist_id: str, position: int, parts: set[str]
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": "youtube#playlistItem",
        "etag": _etag(video),
        "id": f"item-{playlist_id}-{video.video_id}",
    }
    if "snippet" in parts:
        item["snippet"] = {
            "publishedAt": _rfc3339(video.published_at),
            "channelId": video.channel_id,
            "title": video.title,
            "playlistId": playlist_id,
            "position": position,
            "resourceId": {"kind": "youtube#video", "videoId": video.video_id},
        }
    if "contentDetails" in parts:
        item["contentDetails"] = {
            "videoId": video.video_id,
            "videoPublishedAt": _rfc3339(video.published_at),
        }
    return item


def _channel_json(channel: FakeChannel, parts: set[str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": "youtube#channel",
        "etag": f"etag-{channel.channel_id}",
        "id": channel.channel_id,
    }
    if "snippet" in parts:
        item["snippet"] = {
            "title": channel.title,
            "description": "",
            "customUrl": f"@{channel.handle.removeprefix('@').lower()}" if channel.handle else "",
            "publishedAt": _rfc3339(channel.created_at),
        }
    if "contentDetails" in parts:
        uploads = "UU" + channel.channel_id[2:]
        item["contentDetails"] = {"relatedPlaylists": {"likes": "", "uploads": uploads}}
    return item


def _search_json(video: FakeVideo) -> dict[str, Any]:
    return {
        "kind": "youtube#searchResult",
        "etag": _etag(video),
        "id": {"kind": "youtube#video", "videoId": video.video_id},
        "snippet": _video_snippet(video),
    }


def _thumbnail(video_id: str) -> dict[str, Any]:
    return {"url": f"https://i.ytimg.com/vi/{video_id}/mqdefault.jpg", "width": 320, "height": 180}


def _etag(video: FakeVideo) -> str:
    return f"etag-{video.video_id}-{int(video.updated_at.timestamp())}"


# --- the Atom feed ---


HUB_TOPIC = "https://www.youtube.com/xml/feeds/videos.xml"
HUB_LEASE_SECONDS = 432_000


@dataclass(frozen=True, slots=True)
class HubSubscription:
    callback: str
    topic: str
    secret: str
    lease_seconds: int


def _hub_builder(subscription: HubSubscription, body: bytes) -> Callable[[Signing], Delivery]:
    def build(signing: Signing) -> Delivery:
        headers = {"Content-Type": "application/atom+xml"}
        if subscription.secret:
            mac = hmac.new(subscription.secret.encode(), body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature"] = "sha1=" + ("0" * 40 if signing.corrupt else mac)
        return Delivery(subscription.callback, headers, body)

    return build


async def _hub_route(request: Request) -> Response:
    """POST /subscribe: the hub's form; 202 and an asynchronous check of intent."""
    state: FakeYouTubeState = request.app.state.fake
    form = dict(parse_qsl((await request.body()).decode(errors="replace")))
    if form.get("hub.mode") not in ("subscribe", "unsubscribe"):
        return Response("Invalid value for hub.mode", 400)
    if not form.get("hub.callback", "").startswith(("http://", "https://")):
        return Response("Invalid parameter: hub.callback", 400)
    if not form.get("hub.topic", "").startswith(HUB_TOPIC + "?channel_id="):
        return Response("Invalid parameter: hub.topic", 400)
    state.hub_request(form)
    return Response(status_code=202)


async def _hub_switch(request: Request) -> Response:
    state: FakeYouTubeState = request.app.state.fake
    wanted = SwitchIn.model_validate_json(await request.body())
    state.push.switch(wanted.mode, wanted.count, wanted.seconds)
    return JSONResponse(wanted.model_dump())


def render_feed(channel: FakeChannel, videos: list[FakeVideo]) -> str:
    # As in real feeds, the feed-level yt:channelId lacks the UC prefix; the entries' have it.
    short_id = channel.channel_id.removeprefix("UC")
    url = f"https://www.youtube.com/channel/{channel.channel_id}"
    head = f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/2005/Atom">
 <link rel="self" href="http://www.youtube.com/feeds/videos.xml?channel_id={channel.channel_id}"/>
 <id>yt:channel:{short_id}</id>
 <yt:channelId>{short_id}</yt:channelId>
 <title>{_x(channel.title)}</title>
 <link rel="alternate" href="{url}"/>
 <author><name>{_x(channel.title)}</name><uri>{url}</uri></author>
 <published>{channel.created_at.astimezone(UTC).isoformat()}</published>
"""
    return head + "".join(_feed_entry(channel, v) for v in videos) + "</feed>\n"


def _feed_entry(channel: FakeChannel, video: FakeVideo) -> str:
    vid, title = video.video_id, _x(video.title)
    url = f"https://www.youtube.com/channel/{channel.channel_id}"
    return f""" <entry>
  <id>yt:video:{vid}</id>
  <yt:videoId>{vid}</yt:videoId>
  <yt:channelId>{channel.channel_id}</yt:channelId>
  <title>{title}</title>
  <link rel="alternate" href="https://www.youtube.com/watch?v={vid}"/>
  <author><name>{_x(channel.title)}</name><uri>{url}</uri></author>
  <published>{video.published_at.astimezone(UTC).isoformat()}</published>
  <updated>{video.updated_at.astimezone(UTC).isoformat()}</updated>
  <media:group>
   <media:title>{title}</media:title>
   <media:content url="https://www.youtube.com/v/{vid}?version=3" type="application/x-shockwave-flash" width="640" height="390"/>
   <media:thumbnail url="https://i2.ytimg.com/vi/{vid}/hqdefault.jpg" width="480" height="360"/>
   <media:description>{_x(video.description)}</media:description>
   <media:community>
    <media:starRating count="0" average="0.00" min="1" max="5"/>
    <media:statistics views="0"/>
   </media:community>
  </media:group>
 </entry>
"""


def _x(text: str) -> str:
    return html.escape(text, quote=True)


# --- routes ---

ApiHandler = Callable[[FakeYouTubeState, QueryParams], JSONResponse]


async def _injected(failure: _Failure, feed: bool) -> Response:
    if failure.mode == "timeout":
        await asyncio.sleep(failure.hang_seconds)
        return Response("upstream timed out", status_code=504)
    if failure.mode == "garbage":
        if feed:
            broken = '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><entry><yt:vid'
            return Response(broken, media_type=ATOM_CONTENT_TYPE)
        return Response('{"kind": "youtube#videoListRes', media_type="application/json")
    if feed:
        code = 429 if failure.mode == "429" else 500
        return Response("<html><body>Error</body></html>", code, media_type="text/html")
    if failure.mode == "429":
        message = "Resource has been exhausted (e.g. check quota)."
        return _ApiError(429, "rateLimitExceeded", message, "usageLimits").response()
    message = "The service is currently unavailable."
    return _ApiError(503, "backendError", message, "global").response()


def _api_route(
    state: FakeYouTubeState, endpoint: Endpoint, cost: int, handler: ApiHandler
) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        params = request.query_params
        failure = state.begin(endpoint, None)
        if failure is not None:
            return await _injected(failure, feed=False)
        try:
            with state.lock:
                _check_key(state, params)
                # Refused requests cost too; only a spent quota stops one before it runs.
                if not state.charge(cost):
                    raise _quota_exceeded()
                return handler(state, params)
        except _ApiError as error:
            return error.response()

    return route


def _feed_route(state: FakeYouTubeState) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        channel_id = request.query_params.get("channel_id")
        failure = state.begin("feed", channel_id)
        if failure is not None:
            return await _injected(failure, feed=True)
        if not channel_id:
            return Response("<html><body>Bad Request</body></html>", 400, media_type="text/html")
        with state.lock:
            channel = state.channels.get(channel_id)
            if channel is None:
                return Response("<html><body>Not Found</body></html>", 404, media_type="text/html")
            return Response(
                render_feed(channel, state.feed_videos(channel_id)), media_type=ATOM_CONTENT_TYPE
            )

    return route


# --- the /_control/ interface ---


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _NewChannel(_Body):
    channel_id: str | None = None
    handle: str | None = None
    title: str | None = None


class _NewUpload(_Body):
    title: str = "An upload"
    published_at: AwareDatetime | None = None


class _NewSchedule(_Body):
    title: str = "Scheduled stream"
    scheduled_start: AwareDatetime


class _GoLive(_Body):
    title: str | None = None
    viewers: int | None = 0
    category_id: str = "20"
    video_id: str | None = None
    in_feed: bool = True


class _EndStream(_Body):
    video_id: str | None = None


class _VideoChange(_Body):
    title: str | None = None
    viewers: int | None = None
    category_id: str | None = None
    in_feed: bool | None = None


class _FailNext(_Body):
    count: int = 1
    mode: FailMode
    endpoint: Endpoint | None = None
    channel_id: str | None = None
    hang_seconds: float = 1.0


ControlAction = Callable[[FakeYouTubeState, Request, dict[str, Any]], dict[str, Any]]


def _control(
    state: FakeYouTubeState, action: ControlAction
) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        raw = await request.body()
        try:
            body = await request.json() if raw else {}
            return JSONResponse(action(state, request, body))
        except ValidationError as error:
            return JSONResponse({"detail": error.errors(include_url=False)}, status_code=400)
        except ValueError as error:
            status = 409 if isinstance(error, FakeStateError) else 400
            return JSONResponse({"detail": str(error)}, status_code=status)
        except FakeLookupError as error:
            return JSONResponse({"detail": str(error)}, status_code=404)

    return route


def _path(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    return value


def _add_channel(state: FakeYouTubeState, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    new = _NewChannel.model_validate(body)
    return state.add_channel(new.channel_id, new.handle, new.title).to_json()


def _remove_channel(
    state: FakeYouTubeState, request: Request, body: dict[str, Any]
) -> dict[str, Any]:
    state.remove_channel(_path(request, "channel_id"))
    return {}


def _upload(state: FakeYouTubeState, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    new = _NewUpload.model_validate(body)
    return state.upload(_path(request, "channel_id"), new.title, new.published_at).to_json()


def _schedule(state: FakeYouTubeState, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    new = _NewSchedule.model_validate(body)
    channel_id = _path(request, "channel_id")
    return state.schedule_stream(channel_id, new.scheduled_start, new.title).to_json()


def _go_live(state: FakeYouTubeState, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    live = _GoLive.model_validate(body)
    channel_id = _path(request, "channel_id")
    video = state.go_live(
        channel_id, live.title, live.viewers, live.category_id, live.video_id, live.in_feed
    )
    return video.to_json()


def _end(state: FakeYouTubeState, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    end = _EndStream.model_validate(body)
    return state.end_stream(_path(request, "channel_id"), end.video_id).to_json()


def _change_video(
    state: FakeYouTubeState, request: Request, body: dict[str, Any]
) -> dict[str, Any]:
    change = _VideoChange.model_validate(body)
    video_id = _path(request, "video_id")
    video = state.update_video(
        video_id, change.title, change.viewers, change.category_id, change.in_feed
    )
    return video.to_json()


def _fail(state: FakeYouTubeState, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    fail = _FailNext.model_validate(body)
    state.fail_next(fail.count, fail.mode, fail.endpoint, fail.channel_id, fail.hang_seconds)
    return {}


def _exhaust(state: FakeYouTubeState, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    state.exhaust_quota()
    return state.stats().to_json()


def _reset(state: FakeYouTubeState, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    state.reset_quota()
    return state.stats().to_json()


def _stats(state: FakeYouTubeState, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    return state.stats().to_json()


def create_app(state: FakeYouTubeState) -> Starlette:
    control = [
        ("/channels", _add_channel, "POST"),
        ("/channels/{channel_id}", _remove_channel, "DELETE"),
        ("/channels/{channel_id}/uploads", _upload, "POST"),
        ("/channels/{channel_id}/scheduled", _schedule, "POST"),
        ("/channels/{channel_id}/live", _go_live, "POST"),
        ("/channels/{channel_id}/end", _end, "POST"),
        ("/videos/{video_id}", _change_video, "PATCH"),
        ("/failures", _fail, "POST"),
        ("/quota/exhaust", _exhaust, "POST"),
        ("/quota/reset", _reset, "POST"),
        ("/stats", _stats, "GET"),
    ]
    routes = [
        Route("/feeds/videos.xml", _feed_route(state)),
        Route("/youtube/v3/videos", _api_route(state, "videos", 1, _videos)),
        Route("/youtube/v3/playlistItems", _api_route(state, "playlistItems", 1, _playlist_items)),
        Route("/youtube/v3/channels", _api_route(state, "channels", 1, _channels)),
        Route("/youtube/v3/search", _api_route(state, "search", SEARCH_COST, _search)),
        Route("/subscribe", _hub_route, methods=["POST"]),
        Route("/_control/push", _hub_switch, methods=["POST"]),
    ]
    routes += [
        Route(f"/_control{path}", _control(state, action), methods=[method])
        for path, action, method in control
    ]
    app = Starlette(routes=routes)
    app.state.fake = state
    return app


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rfc3339_or_none(moment: datetime | None) -> str | None:
    return _rfc3339(moment) if moment is not None else None
