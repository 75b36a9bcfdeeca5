"""The pure parts, without I/O: the gate, the intervals, playback steps, token encryption and
parsing Spotify's answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import orjson
import pytest

from lumio.dev.fakes.spotify import DEMO_EPISODE, DEMO_TRACKS, episode_json, track_json
from lumio.kit.settings import Settings, SpotifySettings
from lumio.spotify.gate import rules as gate
from lumio.spotify.linking.crypto import (
    TokenCipher,
    TokenUndecryptable,
    decode_key,
    new_key,
    token_context,
)
from lumio.spotify.poller.client import parse_currently_playing
from lumio.spotify.poller.intervals import (
    SpotifyIntervals,
    error_backoff,
    next_poll_delay,
    now_playing_ttl,
    refresh_due,
)
from lumio.spotify.poller.playback import PlaybackState, advance
from lumio.spotify.schemas import Item, ItemKind, NowPlaying

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
INTERVALS = SpotifyIntervals(
    playing=timedelta(seconds=5),
    paused=timedelta(seconds=15),
    idle=timedelta(seconds=30),
    backoff_max=timedelta(seconds=300),
)


def track(item_id: str = "t1", duration_ms: int = 200_000) -> Item:
    return Item(ItemKind.TRACK, item_id, "Song", ("Band",), "Album", None, None, duration_ms)


def playing(item: Item | None, progress_ms: int = 0, is_playing: bool = True) -> NowPlaying:
    kind = item.kind if item else ItemKind.AD
    return NowPlaying(kind, is_playing, progress_ms, item, NOW)


# --- gate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("online", "manual", "expected"),
    [(False, False, False), (True, False, True), (False, True, True), (True, True, True)],
)
def test_the_gate_is_live_somewhere_or_manual(online: bool, manual: bool, expected: bool) -> None:
    assert gate.is_open(online, manual) is expected


def test_only_gate_reasons_name_an_account() -> None:
    account = uuid4()

    def event(reason: str) -> bytes:
        return orjson.dumps({"v": 1, "account_id": str(account), "reason": reason})

    for reason in ("went_online", "went_offline", "manual_started", "manual_stopped"):
        assert gate.gate_event_account(event(reason)) == account
    for reason in ("stream_updated", "now_playing_changed", "some_future_reason"):
        assert gate.gate_event_account(event(reason)) is None
    for garbage in (
        b"",
        b"[1]",
        b'{"reason": "went_online"}',
        b'{"reason": "went_online", "account_id": "x"}',
    ):
        assert gate.gate_event_account(garbage) is None


def test_the_open_set_is_live_accounts_and_manual_keys() -> None:
    live, manual, both = uuid4(), uuid4(), uuid4()
    keys: list[bytes | str] = [
        f"lumio:spotify_manual:{manual}".encode(),
        f"lumio:spotify_manual:{both}",
        b"lumio:spotify_manual:nope",
    ]
    assert gate.open_accounts([live, both], keys) == {live, manual, both}


def test_the_reconcile_is_due_every_interval() -> None:
    every = timedelta(seconds=60)
    assert gate.reconcile_due(None, NOW, every)
    assert not gate.reconcile_due(NOW, NOW + timedelta(seconds=59), every)
    assert gate.reconcile_due(NOW, NOW + timedelta(seconds=60), every)


# --- intervals ----------------------------------------------------------------------------------


def test_playing_polls_often_and_wakes_near_the_track_s_end() -> None:
    assert next_poll_delay(playing(track(), 0), INTERVALS) == timedelta(seconds=5)
    near_end = playing(track(duration_ms=200_000), 198_000)
    assert next_poll_delay(near_end, INTERVALS) == timedelta(seconds=3)
    # Ads have no known end: the playing interval.
    assert next_poll_delay(playing(None), INTERVALS) == timedelta(seconds=5)


def test_paused_and_nothing_playing_poll_less_often() -> None:
    assert next_poll_delay(playing(track(), 10_000, is_playing=False), INTERVALS) == timedelta(
        seconds=15
    )
    assert next_poll_delay(NowPlaying.nothing(NOW), INTERVALS) == timedelta(seconds=30)


def test_errors_back_off_exponentially_up_to_a_cap() -> None:
    base, cap = timedelta(seconds=5), timedelta(seconds=300)
    assert [error_backoff(n, base, cap).total_seconds() for n in (1, 2, 3, 4, 10, 100)] == [
        5,
        10,
        20,
        40,
        300,
        300,
    ]


def test_tokens_refresh_inside_the_margin() -> None:
    margin = timedelta(minutes=5)
    assert refresh_due(NOW + timedelta(minutes=4), NOW, margin)
    assert not refresh_due(NOW + timedelta(minutes=6), NOW, margin)


def test_the_now_playing_key_outlives_the_next_poll() -> None:
    for seconds in (0.4, 5, 15, 30):
        assert now_playing_ttl(timedelta(seconds=seconds)) > seconds + 5


# --- playback -----------------------------------------------------------------------------------


def test_a_new_track_is_a_change_and_a_play() -> None:
    first = advance(PlaybackState(), playing(track("a"), 3_000))
    assert first.changed and first.play is not None
    assert first.play.started_at == NOW - timedelta(seconds=3)
    same = advance(first.state, playing(track("a"), 8_000))
    assert not same.changed and same.play is None
    other = advance(same.state, playing(track("b"), 0))
    assert other.changed and other.play is not None and other.play.item_id == "b"


def test_pause_is_a_change_but_not_a_new_play() -> None:
    started = advance(PlaybackState(), playing(track("a"), 3_000))
    paused = advance(started.state, playing(track("a"), 3_000, is_playing=False))
    resumed = advance(paused.state, playing(track("a"), 3_000))
    assert paused.changed and resumed.changed
    assert paused.play is None and resumed.play is None


def test_a_track_first_seen_paused_enters_the_history_when_it_plays() -> None:
    paused = advance(PlaybackState(), playing(track("a"), 3_000, is_playing=False))
    assert paused.play is None
    assert advance(paused.state, playing(track("a"), 3_000)).play is not None


def test_a_replay_of_the_same_track_is_a_new_play_not_a_change() -> None:
    near_end = advance(PlaybackState(), playing(track("a"), 190_000))
    again = advance(near_end.state, playing(track("a"), 2_000))
    assert again.play is not None and not again.changed


def test_ads_and_nothing_are_changes_without_plays() -> None:
    song = advance(PlaybackState(), playing(track("a")))
    ad = advance(song.state, playing(None))
    nothing = advance(ad.state, NowPlaying.nothing(NOW))
    assert ad.changed and ad.play is None
    assert nothing.changed and nothing.play is None


def test_a_damaged_stored_state_starts_afresh() -> None:
    assert PlaybackState.from_json({"kind": "vinyl"}) == PlaybackState()
    state = advance(PlaybackState(), playing(track("a"))).state
    assert PlaybackState.from_json(state.to_json()) == state


# --- tokens at rest -----------------------------------------------------------------------------


def test_tokens_are_encrypted_and_bound_to_account_and_purpose() -> None:
    cipher = TokenCipher(decode_key(new_key()))
    account = uuid4()
    blob = cipher.encrypt("secret-token", token_context(account, "refresh"))
    assert b"secret-token" not in blob
    assert cipher.decrypt(blob, token_context(account, "refresh")) == "secret-token"
    for wrong in (token_context(uuid4(), "refresh"), token_context(account, "access")):
        with pytest.raises(TokenUndecryptable):
            cipher.decrypt(blob, wrong)
    # A fresh nonce every time.
    assert blob != cipher.encrypt("secret-token", token_context(account, "refresh"))


def test_an_old_key_still_decrypts_after_rotation() -> None:
    old, new = decode_key(new_key()), decode_key(new_key())
    context = token_context(uuid4(), "access")
    blob = TokenCipher(old).encrypt("t", context)
    assert TokenCipher(new, [old]).decrypt(blob, context) == "t"
    with pytest.raises(TokenUndecryptable):
        TokenCipher(new).decrypt(blob, context)


def test_settings_refuse_a_key_that_is_not_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 random bytes"):
        SpotifySettings(token_key="too-short")
    assert Settings(spotify=SpotifySettings(token_key=new_key())).spotify.token_key


# --- Spotify's answers --------------------------------------------------------------------------


def body(item: object, kind: str, is_playing: bool = True, progress: int | None = 1000) -> bytes:
    return orjson.dumps(
        {
            "timestamp": 1,
            "context": None,
            "progress_ms": progress,
            "is_playing": is_playing,
            "currently_playing_type": kind,
            "item": item,
            "actions": {"disallows": {}},
        }
    )


def test_a_track_is_parsed_with_artists_album_and_art() -> None:
    now = parse_currently_playing(body(track_json(DEMO_TRACKS[2]), "track"), NOW)
    assert now.kind is ItemKind.TRACK and now.is_playing and now.progress_ms == 1000
    assert now.item is not None
    assert (now.item.title, now.item.artists, now.item.album) == (
        "Time to Say Goodbye",
        ("Demo Duo", "Guest"),
        "Ending Screens",
    )
    assert now.item.art_url and now.item.url and now.item.duration_ms == 245_000


def test_an_episode_an_ad_and_an_unknown_are_parsed() -> None:
    episode = parse_currently_playing(body(episode_json(DEMO_EPISODE), "episode"), NOW)
    assert episode.kind is ItemKind.EPISODE and episode.item is not None
    assert episode.item.album == "The Lumio Show" and episode.item.artists == ("Lumio Podcasts",)
    ad = parse_currently_playing(body(None, "ad", progress=None), NOW)
    assert (ad.kind, ad.item, ad.progress_ms) == (ItemKind.AD, None, None)
    assert parse_currently_playing(body(None, "unknown"), NOW).kind is ItemKind.UNKNOWN


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b'{"timestamp": 1',
        body(track_json(DEMO_TRACKS[0]), "podcast"),
        body({"type": "track", "name": "x"}, "track"),
        body(track_json(DEMO_TRACKS[0]), "episode"),
    ],
)
def test_anything_else_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match="currently"):
        parse_currently_playing(bad, NOW)
