"""The Twitch adapter against the fake Twitch over loopback, and the fake's own strictness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from lumio.dev.fakes.server import FakeServer, free_port
from lumio.dev.fakes.twitch import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    FakeTwitchState,
    create_app,
)
from lumio.kit.settings import TwitchSettings
from lumio.platforms.base import (
    ChannelNotFound,
    ObservationKind,
    PlatformAdapter,
    PlatformError,
    ResolvedChannel,
)
from lumio.platforms.twitch import TwitchAdapter

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class MutableClock:
    """A clock shared by the fake and the adapter, moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock(START)


@pytest.fixture
def state(clock: MutableClock) -> FakeTwitchState:
    return FakeTwitchState(clock=clock)


class SwappableApp:
    """One loopback server for the module; each test plugs in a fresh fake (fast, isolated)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with FakeServer(swappable) as url:
        yield swappable, url


@pytest.fixture
def base_url(server: tuple[SwappableApp, str], state: FakeTwitchState) -> str:
    swappable, url = server
    swappable.app = create_app(state)
    return url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make_adapter(
    http: httpx.AsyncClient,
    base_url: str,
    clock: MutableClock,
    *,
    secret: str = DEFAULT_CLIENT_SECRET,
    timeout: float = 5.0,
    validate_interval: float = 3600.0,
) -> TwitchAdapter:
    config = TwitchSettings(
        client_id=DEFAULT_CLIENT_ID,
        client_secret=secret,
        api_base=base_url,
        id_base=base_url,
        timeout=timeout,
        validate_interval=validate_interval,
    )
    return TwitchAdapter(http, config, clock=clock)


@pytest.fixture
def adapter(http: httpx.AsyncClient, base_url: str, clock: MutableClock) -> TwitchAdapter:
    return make_adapter(http, base_url, clock)


def helix_headers(token: str, client_id: str = DEFAULT_CLIENT_ID) -> dict[str, str]:
    return {"Client-Id": client_id, "Authorization": f"Bearer {token}"}


async def app_token(http: httpx.AsyncClient, base_url: str) -> str:
    form = {
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "grant_type": "client_credentials",
    }
    response = await http.post(f"{base_url}/oauth2/token", data=form)
    assert response.status_code == 200
    token: str = response.json()["access_token"]
    return token


# --- observing ---


async def test_adapter_is_a_platform_adapter(adapter: TwitchAdapter) -> None:
    as_protocol: PlatformAdapter = adapter
    assert as_protocol.platform == "twitch"
    assert as_protocol.batch_size == 100


async def test_live_channel_is_observed_with_its_stream(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channel = state.add_channel(
        "afro", live=True, title="NoPixel", category="Grand Theft Auto V", viewers=1490
    )

    [observation] = (await adapter.observe([channel.id])).observations

    assert observation.kind is ObservationKind.LIVE
    assert observation.channel_id == channel.id
    assert observation.observed_at == START
    assert observation.stream is not None
    assert observation.stream.title == "NoPixel"
    assert observation.stream.category == "Grand Theft Auto V"
    assert observation.stream.viewers == 1490
    assert observation.stream.started_at == START
    assert observation.stream.stream_id == channel.stream_id


async def test_offline_channel_is_offline_next_to_a_live_one(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    live = state.add_channel("live_one", live=True, title="hi")
    offline = state.add_channel("quiet_one")

    observations = (await adapter.observe([live.id, offline.id])).observations

    kinds = {o.channel_id: o.kind for o in observations}
    assert kinds == {live.id: ObservationKind.LIVE, offline.id: ObservationKind.OFFLINE}
    assert next(o for o in observations if o.channel_id == offline.id).stream is None


async def test_empty_title_and_category_become_none(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channel = state.add_channel("bare", live=True)

    [observation] = (await adapter.observe([channel.id])).observations

    assert observation.stream is not None
    assert (observation.stream.title, observation.stream.category) == (None, None)


async def test_title_and_viewer_changes_keep_the_stream(
    adapter: TwitchAdapter, state: FakeTwitchState, clock: MutableClock
) -> None:
    channel = state.add_channel("changer", live=True, title="before", viewers=10)
    [first] = (await adapter.observe([channel.id])).observations
    clock.advance(60)
    state.update_channel(channel.id, title="after", category="Just Chatting", viewers=25)

    [second] = (await adapter.observe([channel.id])).observations

    assert first.stream is not None
    assert second.stream is not None
    assert (second.stream.title, second.stream.category, second.stream.viewers) == (
        "after",
        "Just Chatting",
        25,
    )
    assert second.stream.stream_id == first.stream.stream_id
    assert second.stream.started_at == first.stream.started_at == START
    assert second.observed_at == START + timedelta(seconds=60)


async def test_going_live_again_is_a_new_stream(
    adapter: TwitchAdapter, state: FakeTwitchState, clock: MutableClock
) -> None:
    channel = state.add_channel("again", live=True)
    [first] = (await adapter.observe([channel.id])).observations
    state.set_offline(channel.id)
    [gone] = (await adapter.observe([channel.id])).observations
    clock.advance(600)
    state.set_live(channel.id)

    [back] = (await adapter.observe([channel.id])).observations

    assert gone.kind is ObservationKind.OFFLINE
    assert first.stream is not None
    assert back.stream is not None
    assert back.stream.stream_id != first.stream.stream_id
    assert back.stream.started_at == START + timedelta(seconds=600)


async def test_more_than_100_ids_are_split_into_batches(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channels = [state.add_channel(f"user{n}", live=n % 7 == 0, viewers=n) for n in range(250)]

    observations = (await adapter.observe([c.id for c in channels])).observations

    assert len(observations) == 250
    kinds = {o.channel_id: o.kind for o in observations}
    for channel in channels:
        expected = ObservationKind.LIVE if channel.live else ObservationKind.OFFLINE
        assert kinds[channel.id] is expected
    stats = state.stats()
    # 100 + 100 + 50: the fake would have answered 400 to anything over 100.
    assert stats.by_endpoint == {"token": 1, "streams": 3}
    assert stats.stream_ids_requested == 250
    assert adapter.requests_sent == 4


async def test_duplicate_and_non_numeric_ids(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channel = state.add_channel("dup", live=True)

    observations = (await adapter.observe([channel.id, channel.id, "not-an-id"])).observations

    kinds = {o.channel_id: (o.kind, o.error_kind) for o in observations}
    assert len(observations) == 2
    assert kinds == {
        channel.id: (ObservationKind.LIVE, None),
        "not-an-id": (ObservationKind.UNKNOWN, "bad_id"),
    }
    assert state.stats().stream_ids_requested == 1


async def test_flapping_channel_is_reported_as_twitch_shows_it(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channel = state.add_channel("flappy", live=True, flapping=True)

    seen = [(await adapter.observe([channel.id])).observations[0] for _ in range(3)]

    assert [o.kind for o in seen] == [
        ObservationKind.LIVE,
        ObservationKind.OFFLINE,
        ObservationKind.LIVE,
    ]
    assert seen[0].stream is not None
    assert seen[2].stream is not None
    # The comeback is the same session: what lets the state machine debounce it.
    assert seen[2].stream.stream_id == seen[0].stream.stream_id


# --- tokens ---


async def test_token_is_requested_once_and_reused(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channel = state.add_channel("steady")

    for _ in range(3):
        await adapter.observe([channel.id])

    assert state.stats().by_endpoint == {"token": 1, "streams": 3}


async def test_expired_token_is_replaced_and_the_poll_still_answers(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channel = state.add_channel("renewed")
    await adapter.observe([channel.id])
    state.expire_tokens()
    state.set_live(channel.id, title="back after expiry")

    [observation] = (await adapter.observe([channel.id])).observations

    assert observation.kind is ObservationKind.LIVE
    assert observation.stream is not None
    assert observation.stream.title == "back after expiry"
    stats = state.stats()
    assert stats.by_endpoint == {"token": 2, "streams": 3}
    assert stats.by_status["401"] == 1


async def test_validation_replaces_a_revoked_token_before_polling(
    http: httpx.AsyncClient, base_url: str, clock: MutableClock, state: FakeTwitchState
) -> None:
    adapter = make_adapter(http, base_url, clock, validate_interval=0)
    channel = state.add_channel("validated", live=True)
    await adapter.observe([channel.id])
    state.expire_tokens()

    [observation] = (await adapter.observe([channel.id])).observations

    assert observation.kind is ObservationKind.LIVE
    stats = state.stats()
    assert stats.by_endpoint == {"token": 2, "validate": 1, "streams": 2}
    assert "401" in stats.by_status  # the validate answer, not a Helix call


async def test_401_after_a_fresh_token_is_unknown_auth(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channel = state.add_channel("locked", live=True)
    state.fail_next("401", count=2)

    [observation] = (await adapter.observe([channel.id])).observations

    assert observation.kind is ObservationKind.UNKNOWN
    assert observation.error_kind == "auth"
    assert state.stats().by_endpoint == {"token": 2, "streams": 2}


async def test_bad_credentials_make_every_channel_unknown(
    http: httpx.AsyncClient, base_url: str, clock: MutableClock, state: FakeTwitchState
) -> None:
    adapter = make_adapter(http, base_url, clock, secret="wrong")
    channels = [state.add_channel(f"c{n}", live=True) for n in range(3)]

    observations = (await adapter.observe([c.id for c in channels])).observations

    assert {(o.kind, o.error_kind) for o in observations} == {(ObservationKind.UNKNOWN, "auth")}
    assert state.stats().by_endpoint == {"token": 1}


async def test_token_endpoint_outage_is_unknown_auth(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channel = state.add_channel("later", live=True)
    state.fail_next("5xx", target="token")

    [failed] = (await adapter.observe([channel.id])).observations
    [recovered] = (await adapter.observe([channel.id])).observations

    assert (failed.kind, failed.error_kind) == (ObservationKind.UNKNOWN, "auth")
    assert recovered.kind is ObservationKind.LIVE


# --- rate limits and failures ---


async def test_rate_limit_headers_are_recorded(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channel = state.add_channel("counted")

    await adapter.observe([channel.id])

    assert adapter.rate_limit is not None
    assert (adapter.rate_limit.limit, adapter.rate_limit.remaining) == (800, 799)
    # One point spent at 800/60 s comes back within a second.
    assert adapter.rate_limit.reset_at == START.timestamp() + 1
    assert adapter.rate_limit.retry_after is None


async def test_429_is_unknown_with_retry_after_from_ratelimit_reset(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channels = [state.add_channel(f"busy{n}", live=True) for n in range(150)]
    state.fail_next("429", reset_in=30)

    observations = (await adapter.observe([c.id for c in channels])).observations

    assert {(o.kind, o.error_kind) for o in observations} == {
        (ObservationKind.UNKNOWN, "rate_limited")
    }
    assert adapter.rate_limit is not None
    assert adapter.rate_limit.remaining == 0
    assert adapter.rate_limit.retry_after == 30
    # The second batch is not sent into an empty bucket.
    assert state.stats().by_endpoint == {"token": 1, "streams": 1}


async def test_emptied_bucket_answers_429_until_it_refills(
    http: httpx.AsyncClient, base_url: str, clock: MutableClock, state: FakeTwitchState
) -> None:
    state.rate_limit = 2
    channel = state.add_channel("thrifty", live=True)
    adapter = make_adapter(http, base_url, clock)

    answers = [(await adapter.observe([channel.id])).observations[0] for _ in range(3)]
    throttled = adapter.rate_limit
    clock.advance(30)  # 2 points a minute: one is back after 30 s
    [after_refill] = (await adapter.observe([channel.id])).observations

    assert [o.kind for o in answers] == [
        ObservationKind.LIVE,
        ObservationKind.LIVE,
        ObservationKind.UNKNOWN,
    ]
    assert answers[2].error_kind == "rate_limited"
    assert throttled is not None
    assert (throttled.limit, throttled.remaining, throttled.retry_after) == (2, 0, 60)
    assert after_refill.kind is ObservationKind.LIVE


@pytest.mark.parametrize(
    ("mode", "error_kind"),
    [("5xx", "http_5xx"), ("garbage", "bad_body"), ("timeout", "timeout")],
)
async def test_failures_are_unknown_never_offline(
    http: httpx.AsyncClient,
    base_url: str,
    clock: MutableClock,
    state: FakeTwitchState,
    mode: str,
    error_kind: str,
) -> None:
    adapter = make_adapter(http, base_url, clock, timeout=0.25)
    live = state.add_channel("on_air", live=True)
    offline = state.add_channel("off_air")
    await adapter.observe([live.id])  # fetch the token before the failure is armed
    state.fail_next(mode, delay=0.6)  # type: ignore[arg-type]

    observations = (await adapter.observe([live.id, offline.id])).observations
    [recovered] = (await adapter.observe([live.id])).observations

    assert {(o.kind, o.error_kind) for o in observations} == {(ObservationKind.UNKNOWN, error_kind)}
    assert all(o.error for o in observations)
    assert recovered.kind is ObservationKind.LIVE


async def test_unreachable_twitch_is_unknown(http: httpx.AsyncClient, clock: MutableClock) -> None:
    adapter = make_adapter(http, f"http://127.0.0.1:{free_port()}", clock, timeout=1)

    [observation] = (await adapter.observe(["12345"])).observations

    assert observation.kind is ObservationKind.UNKNOWN
    # The token request is the first to fail: no poll can run without one.
    assert observation.error_kind == "auth"


async def test_a_failure_aimed_at_streams_spares_the_token_request(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    channel = state.add_channel("odd", live=True)
    state.fail_next("garbage", target="streams")

    [observation] = (await adapter.observe([channel.id])).observations

    assert (observation.kind, observation.error_kind) == (ObservationKind.UNKNOWN, "bad_body")
    assert state.stats().by_endpoint == {"token": 1, "streams": 1}


# --- resolving handles ---


@pytest.mark.parametrize(
    "handle",
    [
        "CoolStreamer",
        " coolstreamer ",
        "@coolstreamer",
        "https://twitch.tv/coolstreamer",
        "https://www.twitch.tv/CoolStreamer/videos",
        "twitch.tv/coolstreamer",
        "m.twitch.tv/coolstreamer?ref=x",
    ],
)
async def test_resolve_login_and_urls(
    adapter: TwitchAdapter, state: FakeTwitchState, handle: str
) -> None:
    channel = state.add_channel("coolstreamer", display_name="CoolStreamer")

    assert await adapter.resolve(handle) == ResolvedChannel(channel.id, "CoolStreamer")


async def test_resolve_numeric_id(adapter: TwitchAdapter, state: FakeTwitchState) -> None:
    channel = state.add_channel("numbered", channel_id="987654", display_name="Numbered")

    assert await adapter.resolve("987654") == ResolvedChannel("987654", "Numbered")
    assert state.stats().by_endpoint["users"] == 1
    assert channel.id == "987654"


@pytest.mark.parametrize(
    "handle", ["nobody_here", "https://youtube.com/coolstreamer", "https://twitch.tv/", "a b"]
)
async def test_resolve_unknown_raises_channel_not_found(
    adapter: TwitchAdapter, state: FakeTwitchState, handle: str
) -> None:
    state.add_channel("coolstreamer")

    with pytest.raises(ChannelNotFound):
        await adapter.resolve(handle)


async def test_resolve_during_an_outage_is_a_platform_error(
    adapter: TwitchAdapter, state: FakeTwitchState
) -> None:
    state.add_channel("coolstreamer")
    state.fail_next("5xx", target="users")

    with pytest.raises(PlatformError) as raised:
        await adapter.resolve("coolstreamer")

    assert raised.value.kind == "http_5xx"


# --- the fake's own strictness ---


async def test_fake_rejects_more_than_100_user_ids(http: httpx.AsyncClient, base_url: str) -> None:
    token = await app_token(http, base_url)
    params = tuple(("user_id", str(n)) for n in range(101))

    response = await http.get(
        f"{base_url}/helix/streams", params=params, headers=helix_headers(token)
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "Bad Request",
        "status": 400,
        "message": "you may only send 100 of each parameter",
    }
    assert "Ratelimit-Remaining" in response.headers


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Authorization": "Bearer {token}"}, "Client ID is missing"),
        ({"Client-Id": DEFAULT_CLIENT_ID}, "OAuth token is missing"),
        # Helix takes only the Bearer scheme (the id host also takes "OAuth").
        (
            {"Client-Id": DEFAULT_CLIENT_ID, "Authorization": "OAuth {token}"},
            "OAuth token is missing",
        ),
        ({"Client-Id": DEFAULT_CLIENT_ID, "Authorization": "Bearer nope"}, "Invalid OAuth token"),
        (
            {"Client-Id": "someone-else", "Authorization": "Bearer {token}"},
            "Client ID and OAuth token do not match",
        ),
    ],
)
async def test_fake_requires_client_id_and_a_valid_token(
    http: httpx.AsyncClient, base_url: str, headers: dict[str, str], message: str
) -> None:
    token = await app_token(http, base_url)
    sent = {k: v.format(token=token) for k, v in headers.items()}

    response = await http.get(f"{base_url}/helix/streams", headers=sent)

    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "status": 401, "message": message}
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(response.headers)


async def test_fake_token_endpoint_checks_credentials_and_grant(
    http: httpx.AsyncClient, base_url: str
) -> None:
    url = f"{base_url}/oauth2/token"
    good = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}

    by_query = await http.post(url, params={**good, "grant_type": "client_credentials"})
    bad_secret = await http.post(
        url, data={**good, "client_secret": "x", "grant_type": "client_credentials"}
    )
    bad_grant = await http.post(url, data={**good, "grant_type": "authorization_code"})

    assert by_query.status_code == 200
    assert set(by_query.json()) == {
        "access_token",
        "refresh_token",
        "expires_in",
        "scope",
        "token_type",
    }
    assert by_query.json()["token_type"] == "bearer"
    assert bad_secret.status_code == 400
    assert bad_secret.json()["message"] == "Client ID/Secret invalid"
    assert (bad_grant.status_code, bad_grant.content) == (400, b"")


async def test_fake_validate_endpoint(
    http: httpx.AsyncClient, base_url: str, state: FakeTwitchState
) -> None:
    token = await app_token(http, base_url)
    url = f"{base_url}/oauth2/validate"

    valid = await http.get(url, headers={"Authorization": f"OAuth {token}"})
    state.expire_tokens()
    expired = await http.get(url, headers={"Authorization": f"OAuth {token}"})

    assert valid.status_code == 200
    assert valid.json()["client_id"] == DEFAULT_CLIENT_ID
    assert valid.json()["expires_in"] == state.token_ttl
    assert expired.status_code == 401


async def test_fake_streams_shape_and_pagination(
    http: httpx.AsyncClient, base_url: str, state: FakeTwitchState
) -> None:
    for n in range(3):
        state.add_channel(f"s{n}", live=True, viewers=n, category="Chess")
    state.add_channel("not_live")
    token = await app_token(http, base_url)
    url = f"{base_url}/helix/streams"

    first = await http.get(url, params={"first": "2"}, headers=helix_headers(token))
    cursor = first.json()["pagination"]["cursor"]
    rest = await http.get(url, params={"first": "2", "after": cursor}, headers=helix_headers(token))
    too_many = await http.get(url, params={"first": "101"}, headers=helix_headers(token))

    page = first.json()["data"]
    assert [s["user_login"] for s in page] == ["s2", "s1"]  # most viewers first
    assert all(isinstance(s["id"], str) and isinstance(s["user_id"], str) for s in page)
    assert page[0]["type"] == "live"
    assert page[0]["game_name"] == "Chess"
    assert page[0]["started_at"] == "2024-05-01T12:00:00Z"
    assert rest.json() == {"data": [rest.json()["data"][0]], "pagination": {}}
    assert rest.json()["data"][0]["user_login"] == "s0"
    assert too_many.status_code == 400


async def test_fake_users_by_login_and_id(
    http: httpx.AsyncClient, base_url: str, state: FakeTwitchState
) -> None:
    channel = state.add_channel("someone", display_name="SomeOne")
    token = await app_token(http, base_url)
    url = f"{base_url}/helix/users"

    by_login = await http.get(url, params={"login": "SOMEONE"}, headers=helix_headers(token))
    by_id = await http.get(url, params={"id": channel.id}, headers=helix_headers(token))
    nothing = await http.get(url, headers=helix_headers(token))

    assert by_login.json()["data"][0]["id"] == channel.id
    assert by_id.json()["data"][0]["display_name"] == "SomeOne"
    assert nothing.status_code == 400


async def test_control_interface_drives_the_fake(
    http: httpx.AsyncClient, base_url: str, adapter: TwitchAdapter
) -> None:
    control = f"{base_url}/_control"
    created = await http.post(f"{control}/channels", json={"login": "remote", "title": "hello"})
    channel_id = created.json()["data"][0]["id"]
    await http.post(f"{control}/channels/{channel_id}", json={"live": True, "viewers": 7})
    [live] = (await adapter.observe([channel_id])).observations
    await http.post(f"{control}/fail", json={"mode": "5xx", "count": 1})
    [failed] = (await adapter.observe([channel_id])).observations
    expired = await http.post(f"{control}/expire-tokens")
    [after_expiry] = (await adapter.observe([channel_id])).observations
    stats = (await http.get(f"{control}/stats")).json()
    bad = await http.post(f"{control}/fail", json={"mode": "explode"})
    missing = await http.post(f"{control}/channels/999", json={"live": True})

    assert created.status_code == 201
    assert live.stream is not None
    assert (live.stream.title, live.stream.viewers) == ("hello", 7)
    assert failed.error_kind == "http_5xx"
    assert expired.json() == {"expired": 1}
    assert after_expiry.kind is ObservationKind.LIVE
    assert stats["by_endpoint"] == {"token": 2, "streams": 4}
    assert stats["failures_injected"] == 1
    assert (bad.status_code, missing.status_code) == (422, 404)


async def test_control_interface_adds_many_and_resets_stats(
    http: httpx.AsyncClient, base_url: str, state: FakeTwitchState, adapter: TwitchAdapter
) -> None:
    control = f"{base_url}/_control"
    many = [{"login": f"bulk{n}", "live": n == 0} for n in range(5)]
    created = await http.post(f"{control}/channels", json=many)
    await adapter.observe([c["id"] for c in created.json()["data"]])
    reset = await http.post(f"{control}/stats/reset")

    assert len(state.channels()) == 5
    assert reset.json()["total"] == 0
    assert state.stats().total == 0
