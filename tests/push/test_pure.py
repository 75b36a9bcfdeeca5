"""Push pieces without I/O: arming, scheduling, signatures, timestamps, topics; push off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from lumio.detection.push_hints import PushIntervals, arm, push_delay
from lumio.detection.state_machine import ChannelState, DetectorConfig, Phase, step
from lumio.detection.worker import PollerConfig
from lumio.dev.fakes.twitch import eventsub_signature
from lumio.events.schemas import Reason
from lumio.kit.settings import PushSettings, Settings
from lumio.platforms.base import LiveStream, Observation, ObservationKind, Platform
from lumio.push import twitch, youtube
from lumio.push.repository import overall_status
from lumio.push.schemas import OnlineHint, PushFacts, PushStatus
from lumio.push.service import push_platforms

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
TWITCH = DetectorConfig(confirm_online_sightings=2)
INTERVALS = PushIntervals(offline=timedelta(seconds=300), unconfirmed=timedelta(seconds=15))


def facts(
    online_at: datetime | None = NOW, enabled: bool = True, hinted_at: datetime | None = NOW
) -> PushFacts:
    online = OnlineHint("s1", NOW) if online_at else None
    return PushFacts("c1", enabled, hinted_at, online, online_at)


def live(stream_id: str = "s1") -> Observation:
    stream = LiveStream("t", "c", 5, NOW, stream_id)
    return Observation("c1", ObservationKind.LIVE, NOW, stream=stream)


def test_a_fresh_online_hint_makes_one_live_poll_enough() -> None:
    armed = arm(ChannelState(phase=Phase.OFFLINE), facts(), NOW, TWITCH)
    assert armed.phase is Phase.PENDING_ONLINE
    assert step(armed, live(), NOW, TWITCH).reason is Reason.WENT_ONLINE


def test_an_offline_poll_after_the_hint_writes_no_online() -> None:
    armed = arm(ChannelState(phase=Phase.OFFLINE), facts(), NOW, TWITCH)
    offline = Observation("c1", ObservationKind.OFFLINE, NOW)
    transition = step(armed, offline, NOW, TWITCH)
    assert transition.reason is None and transition.state.phase is Phase.OFFLINE


@pytest.mark.parametrize("phase", [Phase.LIVE, Phase.GRACE])
def test_a_channel_showing_online_is_never_armed(phase: Phase) -> None:
    state = ChannelState(
        phase=phase, stream=live().stream, grace_since=NOW if phase is Phase.GRACE else None
    )
    assert arm(state, facts(), NOW, TWITCH) is state


def test_old_hints_and_single_sighting_platforms_do_not_arm() -> None:
    offline = ChannelState(phase=Phase.OFFLINE)
    assert arm(offline, facts(NOW - timedelta(minutes=3)), NOW, TWITCH) is offline
    assert arm(offline, facts(), NOW, DetectorConfig()) is offline


def test_push_changes_only_the_offline_interval() -> None:
    offline, default = ChannelState(phase=Phase.OFFLINE), timedelta(seconds=60)
    quiet = facts(online_at=None, hinted_at=None)
    assert push_delay(offline, quiet, default, INTERVALS, NOW, NOW) == timedelta(seconds=300)
    assert (
        push_delay(
            offline,
            facts(online_at=None, enabled=False, hinted_at=None),
            default,
            INTERVALS,
            NOW,
            NOW,
        )
        == default
    )
    live_state = ChannelState(phase=Phase.LIVE, stream=live().stream)
    assert push_delay(live_state, quiet, timedelta(seconds=30), INTERVALS, NOW, NOW) == timedelta(
        seconds=30
    )
    # An online hint not confirmed yet: look again soon.
    assert push_delay(
        offline, facts(hinted_at=NOW - timedelta(seconds=1)), default, INTERVALS, NOW, NOW
    ) == timedelta(seconds=15)
    # A hint that came in during the poll: at once.
    assert push_delay(
        offline, facts(hinted_at=NOW + timedelta(seconds=1)), default, INTERVALS, NOW, NOW
    ) == timedelta(0)


def test_twitch_signature_and_timestamps() -> None:
    signature = eventsub_signature("0123456789", "id", "ts", b"{}")
    assert twitch.signature_ok("0123456789", "id", "ts", b"{}", signature)
    assert not twitch.signature_ok("0123456789", "id", "ts", b"{ }", signature)
    assert twitch.parse_timestamp("2026-12-02T06:00:00.123456789Z") == NOW + timedelta(
        microseconds=123456
    )
    with pytest.raises(twitch.MalformedMessage):
        twitch.parse_timestamp("yesterday")


def test_youtube_topics_and_signatures() -> None:
    topic = youtube.topic_for("UCabc")
    assert youtube.channel_of(topic) == "UCabc"
    assert youtube.channel_of("https://evil.example/xml/feeds/videos.xml?channel_id=UCabc") is None
    assert youtube.signature_ok("k", b"body", youtube.sign("k", b"body"))
    assert not youtube.signature_ok("k", b"body", "md5=00")


def test_a_channel_status_is_its_worst_topic() -> None:
    assert overall_status([]) is PushStatus.NONE
    assert overall_status(["enabled", "enabled"]) is PushStatus.ENABLED
    assert overall_status(["enabled", "pending"]) is PushStatus.PENDING
    assert overall_status(["failed", "revoked"]) is PushStatus.REVOKED


def test_without_a_public_url_push_is_off(settings: Settings) -> None:
    configured = settings.updated(
        {
            "twitch": {"client_id": "x"},
            "push": {"twitch_eventsub_secret": "0123456789"},
            "kick": {"client_id": "k"},
        }
    )
    assert push_platforms(configured) == set()
    assert PollerConfig.from_settings(configured, Platform.TWITCH).push is None
    on = configured.updated({"push": {"public_url": "https://lumio.example.com"}})
    assert push_platforms(on) == {Platform.TWITCH, Platform.KICK}


def test_a_bad_eventsub_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="LUMIO_TWITCH_EVENTSUB_SECRET"):
        PushSettings(twitch_eventsub_secret="short")


async def test_the_receivers_answer_404_when_push_is_off(api: httpx.AsyncClient) -> None:
    answer = await api.post("/webhooks/twitch", content=b"{}")
    assert answer.status_code == 404
    for path in ("/webhooks/kick", "/webhooks/youtube"):
        assert (await api.post(path, content=b"{}")).status_code == 404
    assert (await api.get("/webhooks/youtube")).status_code == 404
