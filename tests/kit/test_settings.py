"""Settings per domain: every environment variable of the README lands in its group's field."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from lumio.kit.logs import JsonFormatter, setup_logging
from lumio.kit.settings import LoggingSettings, PlatformName, Settings
from lumio.platforms.base import Platform

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
OLD_KEY = base64.urlsafe_b64encode(bytes(range(32, 64))).decode()


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


# (variable, value in the environment, where it lands, what it is there)
ENVIRONMENT: list[tuple[str, str, str, object]] = [
    ("DATABASE_URL", "postgresql://db.example/lumio", "db.url", "postgresql://db.example/lumio"),
    ("REDIS_URL", "redis://cache.example:6379/0", "redis.url", "redis://cache.example:6379/0"),
    ("LUMIO_DATA_DIR", "/srv/lumio", "data_dir", Path("/srv/lumio")),
    ("LUMIO_API_HOST", "0.0.0.0", "api.host", "0.0.0.0"),
    ("LUMIO_API_PORT", "8123", "api.port", 8123),
    ("LUMIO_COOKIE_SECURE", "true", "api.cookie_secure", True),
    ("LUMIO_SESSION_TTL_SECONDS", "3600", "api.session_ttl", seconds(3600)),
    ("LUMIO_AUTH_CACHE_SECONDS", "2.5", "api.auth_cache", seconds(2.5)),
    ("LUMIO_MANUAL_CONNECT_TTL_SECONDS", "600", "api.manual_connect_ttl", seconds(600)),
    ("LUMIO_GRAPHQL_MAX_DEPTH", "20", "api.graphql_max_depth", 20),
    ("LUMIO_GRAPHQL_MAX_TOKENS", "3000", "api.graphql_max_tokens", 3000),
    ("LUMIO_MAX_BODY_BYTES", "4096", "api.max_body_bytes", 4096),
    ("LUMIO_DB_POOL_MIN", "3", "db.pool_min", 3),
    ("LUMIO_DB_POOL_MAX", "7", "db.pool_max", 7),
    ("LUMIO_REDIS_TIMEOUT_SECONDS", "0.5", "redis.timeout", seconds(0.5)),
    ("LUMIO_TWITCH_CLIENT_ID", "tw-id", "twitch.client_id", "tw-id"),
    ("LUMIO_TWITCH_CLIENT_SECRET", "tw-secret", "twitch.client_secret", "tw-secret"),
    ("LUMIO_TWITCH_API_BASE", "http://tw.test", "twitch.api_base", "http://tw.test"),
    ("LUMIO_TWITCH_ID_BASE", "http://tw-id.test", "twitch.id_base", "http://tw-id.test"),
    ("LUMIO_YOUTUBE_API_KEY", "yt-key", "youtube.api_key", "yt-key"),
    ("LUMIO_YOUTUBE_API_BASE", "http://yt.test", "youtube.api_base", "http://yt.test"),
    ("LUMIO_YOUTUBE_FEED_BASE", "http://feed.test", "youtube.feed_base", "http://feed.test"),
    ("LUMIO_YOUTUBE_DAILY_QUOTA", "500", "youtube.daily_quota", 500),
    ("LUMIO_KICK_CLIENT_ID", "ki-id", "kick.client_id", "ki-id"),
    ("LUMIO_KICK_CLIENT_SECRET", "ki-secret", "kick.client_secret", "ki-secret"),
    ("LUMIO_KICK_API_BASE", "http://kick.test", "kick.api_base", "http://kick.test"),
    ("LUMIO_KICK_ID_BASE", "http://kick-id.test", "kick.id_base", "http://kick-id.test"),
    ("LUMIO_TROVO_CLIENT_ID", "tr-id", "trovo.client_id", "tr-id"),
    ("LUMIO_TROVO_API_BASE", "http://trovo.test", "trovo.api_base", "http://trovo.test"),
    ("LUMIO_GRACE_SECONDS", "90", "detection.grace", seconds(90)),
    (
        "LUMIO_GRACE_OVERRIDES",
        '{"kick": 180, "trovo": 1.5}',
        "detection.grace_overrides",
        {"kick": seconds(180), "trovo": seconds(1.5)},
    ),
    (
        "LUMIO_CONFIRM_ONLINE_PLATFORMS",
        '["twitch", "kick"]',
        "detection.confirm_online_platforms",
        frozenset({"twitch", "kick"}),
    ),
    ("LUMIO_POLL_OFFLINE_SECONDS", "61", "detection.poll_offline", seconds(61)),
    ("LUMIO_POLL_LIVE_SECONDS", "31", "detection.poll_live", seconds(31)),
    ("LUMIO_POLL_SETTLING_SECONDS", "16", "detection.poll_settling", seconds(16)),
    ("LUMIO_LEASE_SECONDS", "45", "detection.lease", seconds(45)),
    ("LUMIO_BACKOFF_MAX_SECONDS", "200", "detection.backoff_max", seconds(200)),
    ("LUMIO_WORKER_CONCURRENCY", "5", "detection.concurrency", 5),
    ("LUMIO_POLL_BATCH_WAIT_SECONDS", "1.5", "detection.poll_batch_wait", seconds(1.5)),
    ("LUMIO_WORKER_METRICS_PORT", "9100", "detection.metrics_port", 9100),
    ("LUMIO_SPOTIFY_CLIENT_ID", "sp-id", "spotify.client_id", "sp-id"),
    ("LUMIO_SPOTIFY_CLIENT_SECRET", "sp-secret", "spotify.client_secret", "sp-secret"),
    ("LUMIO_SPOTIFY_ACCOUNTS_BASE", "http://acc.test", "spotify.accounts_base", "http://acc.test"),
    ("LUMIO_SPOTIFY_API_BASE", "http://sp.test", "spotify.api_base", "http://sp.test"),
    ("LUMIO_SPOTIFY_REDIRECT_URI", "http://cb.test", "spotify.redirect_uri", "http://cb.test"),
    (
        "LUMIO_SPOTIFY_LINK_RETURN_URL",
        "http://app.test",
        "spotify.link_return_url",
        "http://app.test",
    ),
    ("LUMIO_SPOTIFY_TOKEN_KEY", KEY, "spotify.token_key", KEY),
    ("LUMIO_SPOTIFY_TOKEN_KEY_FILE", "/run/key", "spotify.token_key_file", Path("/run/key")),
    ("LUMIO_SPOTIFY_TOKEN_OLD_KEYS", f'["{OLD_KEY}"]', "spotify.token_old_keys", [OLD_KEY]),
    ("LUMIO_SPOTIFY_POLL_PLAYING_SECONDS", "4", "spotify.poll_playing", seconds(4)),
    ("LUMIO_SPOTIFY_POLL_PAUSED_SECONDS", "14", "spotify.poll_paused", seconds(14)),
    ("LUMIO_SPOTIFY_POLL_IDLE_SECONDS", "29", "spotify.poll_idle", seconds(29)),
    ("LUMIO_SPOTIFY_REFRESH_MARGIN_SECONDS", "200", "spotify.refresh_margin", seconds(200)),
    ("LUMIO_SPOTIFY_QUOTA_BACKOFF_SECONDS", "600", "spotify.quota_backoff", seconds(600)),
    ("LUMIO_SPOTIFY_REQUESTS_PER_30S", "100", "spotify.requests_per_30s", 100),
    ("LUMIO_SPOTIFY_BACKOFF_MAX_SECONDS", "100", "spotify.backoff_max", seconds(100)),
    ("LUMIO_SPOTIFY_LEASE_SECONDS", "20", "spotify.lease", seconds(20)),
    ("LUMIO_SPOTIFY_RECONCILE_SECONDS", "50", "spotify.reconcile_every", seconds(50)),
    ("LUMIO_SPOTIFY_BATCH_SIZE", "25", "spotify.batch_size", 25),
    ("LUMIO_SPOTIFY_WORKER_CONCURRENCY", "3", "spotify.concurrency", 3),
    ("LUMIO_SPOTIFY_WORKER_METRICS_PORT", "9101", "spotify.metrics_port", 9101),
    ("LUMIO_LOG_FORMAT", "JSON", "logging.format", "json"),
]
# One variable, read by every group that makes HTTP requests to a platform (and the shared client).
TIMEOUT_FIELDS = ["platform_timeout", *(f"{p}.timeout" for p in get_args(PlatformName))]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("LUMIO_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    return monkeypatch


def field(settings: Settings, path: str) -> object:
    value: object = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize(("variable", "raw", "path", "expected"), ENVIRONMENT)
def test_each_variable_lands_in_its_group(
    clean_env: pytest.MonkeyPatch, variable: str, raw: str, path: str, expected: object
) -> None:
    default = field(Settings(), path)
    assert default != expected
    clean_env.setenv(variable, raw)
    assert field(Settings(), path) == expected


def test_every_variable_at_once(clean_env: pytest.MonkeyPatch) -> None:
    for variable, raw, _, _ in ENVIRONMENT:
        clean_env.setenv(variable, raw)
    clean_env.setenv("LUMIO_PLATFORM_TIMEOUT_SECONDS", "2.5")
    settings = Settings()
    assert {path: field(settings, path) for _, _, path, _ in ENVIRONMENT} == {
        path: expected for _, _, path, expected in ENVIRONMENT
    }
    assert {field(settings, path) for path in TIMEOUT_FIELDS} == {seconds(2.5)}
    assert settings.spotify.timeout == seconds(2.5)


def test_prefixed_database_and_redis_urls_are_accepted(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LUMIO_DATABASE_URL", "postgresql://other.example/lumio")
    clean_env.setenv("LUMIO_REDIS_URL", "rediss://cache.example")
    settings = Settings()
    assert settings.db.url == "postgresql://other.example/lumio"
    assert settings.redis.url == "rediss://cache.example"


def test_defaults_are_durations(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.detection.grace == seconds(120)
    assert settings.detection.confirm_online_platforms == {"twitch"}
    assert settings.api.session_ttl == timedelta(days=14)
    assert {field(settings, path) for path in TIMEOUT_FIELDS} == {seconds(10)}
    assert settings.logging.format == "text"


@pytest.mark.parametrize(
    ("variable", "raw", "named"),
    [
        ("LUMIO_GRACE_OVERRIDES", '{"kcik": 180}', "kcik"),
        ("LUMIO_CONFIRM_ONLINE_PLATFORMS", '["twitch", "youtub"]', "youtub"),
        ("LUMIO_GRACE_SECONDS", "two minutes", "LUMIO_GRACE_SECONDS"),
        ("LUMIO_POLL_LIVE_SECONDS", "0", "LUMIO_POLL_LIVE_SECONDS"),
        ("LUMIO_LOG_FORMAT", "xml", "LUMIO_LOG_FORMAT"),
        ("LUMIO_KICK_IDS_PER_REQUEST", "51", "LUMIO_KICK_IDS_PER_REQUEST"),
        ("DATABASE_URL", "mysql://db", "DATABASE_URL must be a postgresql:// URL"),
        ("LUMIO_SPOTIFY_TOKEN_KEY", "short", "32 random bytes"),
    ],
)
def test_a_bad_value_fails_at_start_naming_what_to_fix(
    clean_env: pytest.MonkeyPatch, variable: str, raw: str, named: str
) -> None:
    clean_env.setenv(variable, raw)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert named in str(caught.value)


def test_an_unknown_platform_key_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LUMIO_GRACE_OVERRIDES", '{"kcik": 180}')
    with pytest.raises(ValidationError, match=r"LUMIO_GRACE_OVERRIDES\.kcik"):
        Settings()


def test_platform_names_are_the_platform_enum() -> None:
    assert set(get_args(PlatformName)) == {p.value for p in Platform}


def test_updated_validates_and_keeps_the_rest(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    changed = settings.updated({"detection": {"grace": 30}, "data_dir": Path("/srv/x")})
    assert changed.detection.grace == seconds(30)
    assert changed.detection.poll_live == settings.detection.poll_live
    assert changed.data_dir == Path("/srv/x")
    assert settings.detection.grace == seconds(120)
    with pytest.raises(ValidationError, match="gracee"):
        settings.updated({"detection": {"gracee": 30}})
    with pytest.raises(ValidationError, match="kcik"):
        settings.updated({"detection": {"grace_overrides": {"kcik": 1}}})


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(("format", "json_lines"), [("json", True), ("text", False)])
def test_logging_takes_its_format_from_the_settings(
    root_logger: logging.Logger, format: str, json_lines: bool
) -> None:
    setup_logging(LoggingSettings(format=format))
    (handler,) = root_logger.handlers
    assert isinstance(handler.formatter, JsonFormatter) is json_lines
