"""Simulated platforms for `lumio dev`: the four fakes on loopback ports, one demo channel on each,
and a simulator that makes those channels go live, change and end the way real streams do.

``start_fakes()`` serves the fakes (each with its own default credentials) and gives the settings
that point Lumio at them; ``Simulator(fakes).run(stop)`` then changes the demo channels through the
fakes' thread-safe Python control methods every ``every`` seconds (jittered by a third): a channel
goes live with a title and a category, its viewers drift, its title changes now and then, it ends
after a few minutes, and once in a while it drops for less than the detector's grace period and
comes back (which must never show offline).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from lumio.dev.fakes import kick, trovo, twitch, youtube
from lumio.dev.fakes.kick import FakeKickState
from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.state import ChannelPatch, FakePlatformState
from lumio.dev.fakes.trovo import FakeTrovoState
from lumio.dev.fakes.twitch import FakeTwitchState
from lumio.dev.fakes.youtube import FakeYouTubeState
from lumio.platforms.base import Platform

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoChannel:
    platform: Platform
    # Fixed, so that a demo account linked in an earlier run finds the same channels again.
    channel_id: str
    # What a user would type to link it (resolved through the fake like a real platform).
    handle: str
    display_name: str


DEMO_CHANNELS = (
    DemoChannel(Platform.TWITCH, "90000001", "lumio_demo", "LumioDemo"),
    DemoChannel(Platform.YOUTUBE, "UCLumioDemoChannel000001", "@lumiodemo", "Lumio Demo"),
    DemoChannel(Platform.KICK, "9000001", "lumio-demo", "lumio-demo"),
    DemoChannel(Platform.TROVO, "900000001", "lumiodemo", "LumioDemo"),
)

TITLES = (
    "Building Lumio live: channel status in Python",
    "Chill coding and chat",
    "Ranked grind until we win one",
    "Any% speedrun attempts",
    "Morning coffee and your questions",
    "Reviewing viewer code, bring your repos",
    "Late night chess puzzles with chat",
    "First playthrough, no spoilers please",
)
# Category names, and the YouTube category id each one is published under.
CATEGORIES = {
    "Software and Game Development": "28",
    "Just Chatting": "22",
    "Chess": "20",
    "Minecraft": "20",
    "Music": "10",
}
GO_LIVE_CHANCE = 0.3
DROP_CHANCE = 0.12
TITLE_CHANCE = 0.15
CATEGORY_CHANCE = 0.05
STREAM_SECONDS = (180.0, 420.0)
MIN_DROP_SECONDS = 8.0
# A stream drops only once it has been live this long (and has surely been seen live).
DROP_AFTER_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Show:
    title: str
    category: str
    viewers: int


class _Driver(Protocol):
    def go_live(self, show: Show) -> None: ...

    def change(self, show: Show) -> None: ...

    def end(self) -> None: ...


class _TwitchDriver:
    def __init__(self, state: FakeTwitchState, channel_id: str) -> None:
        self.state, self.channel_id = state, channel_id

    def go_live(self, show: Show) -> None:
        self.state.update_channel(
            self.channel_id,
            live=True,
            title=show.title,
            category=show.category,
            viewers=show.viewers,
        )

    def change(self, show: Show) -> None:
        self.state.update_channel(
            self.channel_id, title=show.title, category=show.category, viewers=show.viewers
        )

    def end(self) -> None:
        self.state.set_offline(self.channel_id)


class _SharedDriver:
    """Kick and Trovo: both fakes keep their channels in ``FakePlatformState``."""

    def __init__(self, state: FakePlatformState, channel_id: str) -> None:
        self.state, self.channel_id = state, channel_id

    def go_live(self, show: Show) -> None:
        self.state.update(self.channel_id, self._patch(show, live=True))

    def change(self, show: Show) -> None:
        self.state.update(self.channel_id, self._patch(show, live=None))

    def end(self) -> None:
        self.state.set_offline(self.channel_id)

    @staticmethod
    def _patch(show: Show, live: bool | None) -> ChannelPatch:
        # crc32: the same category keeps the same id in every run.
        category_id = zlib.crc32(show.category.encode()) % 100_000
        return ChannelPatch(
            live=live,
            title=show.title,
            category=show.category,
            category_id=category_id,
            viewers=show.viewers,
        )


class _YouTubeDriver:
    """Each go-live is a new broadcast (video) that appears in the channel's feed."""

    def __init__(self, state: FakeYouTubeState, channel_id: str) -> None:
        self.state, self.channel_id = state, channel_id
        self.video_id: str | None = None

    def go_live(self, show: Show) -> None:
        category_id = CATEGORIES.get(show.category, "20")
        video = self.state.go_live(self.channel_id, show.title, show.viewers, category_id)
        self.video_id = video.video_id

    def change(self, show: Show) -> None:
        if self.video_id is not None:
            category_id = CATEGORIES.get(show.category, "20")
            self.state.update_video(self.video_id, show.title, show.viewers, category_id)

    def end(self) -> None:
        if self.video_id is not None:
            self.state.end_stream(self.channel_id, self.video_id)
            self.video_id = None


@dataclass
class Fakes:
    """The four fakes, served on loopback, each holding its demo channel."""

    twitch: FakeTwitchState
    youtube: FakeYouTubeState
    kick: FakeKickState
    trovo: FakeTrovoState
    servers: dict[Platform, FakeServer]

    def url(self, platform: Platform) -> str:
        return self.servers[platform].base_url

    def settings_updates(self) -> dict[str, dict[str, str]]:
        """Settings (for ``Settings.updated``) that point every platform adapter at its fake,
        with its credentials."""
        client_id, secret = next(iter(self.twitch.clients.items()))
        tw, yt = self.url(Platform.TWITCH), self.url(Platform.YOUTUBE)
        ki, tr = self.url(Platform.KICK), self.url(Platform.TROVO)
        return {
            "twitch": {
                "client_id": client_id,
                "client_secret": secret,
                "api_base": tw,
                "id_base": tw,
            },
            "youtube": {"api_key": self.youtube.api_key, "api_base": yt, "feed_base": yt},
            "kick": {
                "client_id": self.kick.client_id,
                "client_secret": self.kick.client_secret,
                "api_base": ki,
                "id_base": ki,
            },
            "trovo": {"client_id": self.trovo.client_id, "api_base": tr},
        }

    def driver(self, demo: DemoChannel) -> _Driver:
        match demo.platform:
            case Platform.TWITCH:
                return _TwitchDriver(self.twitch, demo.channel_id)
            case Platform.YOUTUBE:
                return _YouTubeDriver(self.youtube, demo.channel_id)
            case Platform.KICK:
                return _SharedDriver(self.kick, demo.channel_id)
            case Platform.TROVO:
                return _SharedDriver(self.trovo, demo.channel_id)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def start_fakes() -> Fakes:
    """Serve the four fakes on free loopback ports, each with its demo channel (offline)."""
    fakes = Fakes(FakeTwitchState(), FakeYouTubeState(), FakeKickState(), FakeTrovoState(), {})
    for demo in DEMO_CHANNELS:
        name, cid = demo.handle.removeprefix("@"), demo.channel_id
        match demo.platform:
            case Platform.TWITCH:
                fakes.twitch.add_channel(name, channel_id=cid, display_name=demo.display_name)
            case Platform.YOUTUBE:
                fakes.youtube.add_channel(cid, name, demo.display_name)
            case Platform.KICK:
                fakes.kick.add_channel(name, channel_id=cid, display_name=demo.display_name)
            case Platform.TROVO:
                fakes.trovo.add_channel(name, channel_id=cid, display_name=demo.display_name)
    apps = {
        Platform.TWITCH: twitch.create_app(fakes.twitch),
        Platform.YOUTUBE: youtube.create_app(fakes.youtube),
        Platform.KICK: kick.create_app(fakes.kick),
        Platform.TROVO: trovo.create_app(fakes.trovo),
    }
    try:
        for platform, app in apps.items():
            fakes.servers[platform] = FakeServer(app)
            fakes.servers[platform].start()
    except BaseException:
        fakes.stop()
        raise
    return fakes


class Phase(StrEnum):
    OFFLINE = "offline"
    LIVE = "live"
    # Disconnected for a moment; back before the grace period ends.
    DROPPED = "dropped"


@dataclass
class _Channel:
    demo: DemoChannel
    driver: _Driver
    phase: Phase = Phase.OFFLINE
    show: Show | None = None
    started_at: float = 0.0
    ends_at: float = 0.0
    back_at: float = 0.0
    # At most one drop per stream.
    dropped_once: bool = False
    # After a stream, no new one before this: the end must outlast the grace period to show.
    rests_until: float = 0.0


class Simulator:
    """Drives the demo channels of ``fakes``; ``step()`` is one tick, ``run()`` ticks until stopped.

    ``every``: seconds between ticks (±⅓); ``max_drop``: the longest short drop, to be kept well
    inside the detector's grace period; ``min_rest``: the least time offline between two streams,
    to be kept above the grace period so that an end shows as offline.
    """

    def __init__(
        self,
        fakes: Fakes,
        every: float = 30.0,
        *,
        max_drop: float = 45.0,
        min_rest: float = 150.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every <= 0 or max_drop < MIN_DROP_SECONDS:
            raise ValueError(f"every must be positive and max_drop at least {MIN_DROP_SECONDS}")
        self.every = every
        self.max_drop = max_drop
        self.min_rest = min_rest
        self.rng = rng or random.Random()
        self.clock = clock
        self._channels = {d.platform: _Channel(d, fakes.driver(d)) for d in DEMO_CHANNELS}
        self._ticks = 0

    def phase(self, platform: Platform) -> Phase:
        return self._channels[platform].phase

    # --- one change, on demand (tests) or from a tick ---

    def start_stream(self, platform: Platform) -> Show:
        """Go live now with a fresh title, category and audience (a live channel stays as it is)."""
        channel = self._channels[platform]
        if channel.phase is Phase.OFFLINE:
            show = Show(
                self.rng.choice(TITLES), self.rng.choice(list(CATEGORIES)), self.rng.randint(3, 60)
            )
            channel.driver.go_live(show)
            channel.show, channel.phase, channel.dropped_once = show, Phase.LIVE, False
            channel.started_at = self.clock()
            channel.ends_at = channel.started_at + self.rng.uniform(*STREAM_SECONDS)
            log.info(
                "simulator: %s went live: %r (%s)", self._name(channel), show.title, show.category
            )
        assert channel.show is not None
        return channel.show

    def end_stream(self, platform: Platform) -> None:
        channel = self._channels[platform]
        if channel.phase is Phase.LIVE:
            channel.driver.end()
        channel.phase, channel.show = Phase.OFFLINE, None
        channel.rests_until = self.clock() + self.min_rest * self.rng.uniform(1.0, 1.5)
        log.info("simulator: %s ended its stream", self._name(channel))

    def drop(self, platform: Platform, seconds: float | None = None) -> None:
        """A live channel disconnects; it comes back after ``seconds`` (see ``resume_due``)."""
        channel = self._channels[platform]
        if channel.phase is not Phase.LIVE:
            return
        seconds = self.rng.uniform(MIN_DROP_SECONDS, self.max_drop) if seconds is None else seconds
        channel.driver.end()
        channel.phase, channel.dropped_once = Phase.DROPPED, True
        channel.back_at = self.clock() + seconds
        log.info("simulator: %s dropped; back in %.0f s", self._name(channel), seconds)

    def resume_due(self) -> None:
        """Bring back every dropped channel whose drop is over: the same show, reconnected."""
        now = self.clock()
        for channel in self._channels.values():
            if channel.phase is Phase.DROPPED and now >= channel.back_at and channel.show:
                channel.driver.go_live(channel.show)
                channel.phase = Phase.LIVE
                log.info("simulator: %s is back after a short drop", self._name(channel))

    def step(self) -> None:
        """One tick: the first puts a channel live at once; later ones change each channel."""
        self.resume_due()
        self._ticks += 1
        offline = [p for p, c in self._channels.items() if c.phase is Phase.OFFLINE]
        if self._ticks == 1 and len(offline) == len(self._channels):
            self.start_stream(self.rng.choice(offline))
            return
        for platform, channel in self._channels.items():
            if (
                channel.phase is Phase.OFFLINE
                and self.clock() >= channel.rests_until
                and self.rng.random() < GO_LIVE_CHANCE
            ):
                self.start_stream(platform)
            elif channel.phase is Phase.LIVE:
                self._live_tick(channel)

    def _live_tick(self, channel: _Channel) -> None:
        now = self.clock()
        if now >= channel.ends_at:
            self.end_stream(channel.demo.platform)
        elif (
            not channel.dropped_once
            and now - channel.started_at >= DROP_AFTER_SECONDS
            and self.rng.random() < DROP_CHANCE
        ):
            self.drop(channel.demo.platform)
        elif channel.show is not None:
            show = channel.show
            drift = round(show.viewers * self.rng.uniform(0.85, 1.2)) + self.rng.randint(-2, 4)
            changed = replace(show, viewers=max(1, drift))
            if self.rng.random() < TITLE_CHANCE:
                changed = replace(changed, title=self._other(TITLES, show.title))
                log.info("simulator: %s changed its title: %r", self._name(channel), changed.title)
            if self.rng.random() < CATEGORY_CHANCE:
                changed = replace(changed, category=self._other(list(CATEGORIES), show.category))
                log.info("simulator: %s switched to %s", self._name(channel), changed.category)
            channel.driver.change(changed)
            channel.show = changed

    # --- the loop ---

    async def run(self, stop: asyncio.Event) -> None:
        """Tick at once, then every ``every`` seconds (±⅓), until ``stop`` is set."""
        next_tick = self.clock()
        while not stop.is_set():
            try:
                if self.clock() >= next_tick:
                    self.step()
                    next_tick = self.clock() + self.every * self.rng.uniform(2 / 3, 4 / 3)
                else:
                    self.resume_due()
            except Exception:
                # A simulator hiccup must never stop `lumio dev`.
                log.exception("simulator step failed")
            wake = min(
                [next_tick]
                + [c.back_at for c in self._channels.values() if c.phase is Phase.DROPPED]
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.05, wake - self.clock()))

    def _other(self, choices: Sequence[str], current: str) -> str:
        return self.rng.choice([c for c in choices if c != current])

    @staticmethod
    def _name(channel: _Channel) -> str:
        return f"{channel.demo.platform.value} {channel.demo.display_name}"
