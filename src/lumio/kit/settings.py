"""One settings object for every process, read from the environment and validated at start.

Grouped per domain (``settings.api``, ``settings.db``, ``settings.twitch``, ``settings.detection``,
``settings.spotify``...): each group is its own ``BaseSettings`` reading its own environment
variables, whose names are those of the README's table. Durations are ``timedelta`` fields that
read plain seconds from the environment ("60", "1.5").
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    BeforeValidator,
    Field,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

# The values of lumio.platforms.base.Platform, which the kit may not import (a test keeps the two
# equal): maps and lists keyed by platform refuse a misspelt name at start.
PlatformName = Literal["twitch", "youtube", "kick", "trovo"]

_KEY_HELP = (
    "{name} must be 32 random bytes in base64url, e.g. the output of: python -c "
    "'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
)


def _is_aes256_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.strip().encode())) == 32
    except (ValueError, binascii.Error):
        return False


def _plain_seconds(value: object) -> object:
    # The environment gives "60" or "1.5"; pydantic reads a string timedelta as ISO 8601 only.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


Seconds = Annotated[timedelta, BeforeValidator(_plain_seconds)]
_ZERO = timedelta(0)


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def _group(prefix: str) -> SettingsConfigDict:
    # Each field's alias is its environment variable, so that an error names what to set;
    # populate_by_name: code builds groups by field name.
    return SettingsConfigDict(
        env_prefix=prefix,
        extra="forbid",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=lambda name: f"{prefix}{name}".upper()),
    )


class ApiSettings(BaseSettings):
    model_config = _group("LUMIO_")

    host: str = Field(default="127.0.0.1", validation_alias=_env("LUMIO_API_HOST"))
    port: int = Field(default=8000, ge=0, le=65535, validation_alias=_env("LUMIO_API_PORT"))
    # None ("auto"): Secure cookies when the request came over HTTPS (or a proxy says so).
    cookie_secure: bool | None = None
    session_ttl: Seconds = Field(
        default=timedelta(days=14),
        ge=timedelta(minutes=1),
        validation_alias=_env("LUMIO_SESSION_TTL_SECONDS"),
    )
    # How long a verified key or session is trusted without asking PostgreSQL again.
    # Revocation clears it at once in every API process (Redis pub/sub); this bounds the
    # staleness when Redis is unreachable.
    auth_cache: Seconds = Field(
        default=timedelta(seconds=10), ge=_ZERO, validation_alias=_env("LUMIO_AUTH_CACHE_SECONDS")
    )
    manual_connect_ttl: Seconds = Field(
        default=timedelta(minutes=30),
        ge=timedelta(seconds=1),
        validation_alias=_env("LUMIO_MANUAL_CONNECT_TTL_SECONDS"),
    )
    # The standard introspection query (GraphiQL, client generators) is 14 deep.
    graphql_max_depth: int = Field(default=15, ge=2)
    graphql_max_tokens: int = Field(default=2000, ge=100)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # Security (issue 10): limits one tenant or one attacker cannot push past.
    # Live updates: concurrent SSE streams per credential and per API process (then 429).
    sse_max_per_credential: int = Field(default=10, ge=1)
    sse_max_per_process: int = Field(default=5000, ge=1)
    # Sign-in throttling, counted in Redis so every replica agrees: failures within the window
    # per account (email) and per client address; past them 429 with Retry-After.
    login_window_seconds: int = Field(default=900, ge=1)
    login_max_failures: int = Field(default=10, ge=1)
    login_max_failures_per_address: int = Field(default=50, ge=1)
    # Each earlier failure adds this much delay before the next answer (doubling, capped).
    login_delay_base_seconds: float = Field(default=0.1, ge=0)
    login_delay_max_seconds: float = Field(default=2.0, ge=0)
    # Argon2 verifications at once per process: a flood of sign-ins leaves CPU for reads.
    password_workers: int = Field(default=1, ge=1)
    # Which peers may set X-Forwarded-For / X-Forwarded-Proto (the trusted reverse proxies).
    forwarded_allow_ips: str = "127.0.0.1"
    # Live (not revoked) API keys per user.
    api_keys_per_user: int = Field(default=50, ge=1)
    # HTTP server limits applied by `lumio api` (keep a reverse proxy in front anyway).
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    http_max_headers: int = Field(default=100, ge=8)
    # Whole request head (line and headers) must arrive within this; also the idle limit of a
    # new connection before its first request.
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    # The body must arrive within this after the head (then 408 and the connection closes).
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)
    http_keep_alive_seconds: int = Field(default=5, ge=1)
    http_max_connections: int = Field(default=10_000, ge=1)
    # GraphQL: root fields (aliases included) in one operation.
    graphql_max_root_fields: int = Field(default=20, ge=1)


class DatabaseSettings(BaseSettings):
    model_config = _group("LUMIO_DB_")

    # Unprefixed on purpose: the name every hosting platform already uses.
    url: str | None = Field(
        default=None, validation_alias=_env("DATABASE_URL", "LUMIO_DATABASE_URL")
    )
    pool_min: int = Field(default=2, ge=1)
    pool_max: int = Field(default=10, ge=1)
    # Opening a connection, taking one from the pool, one statement (server and client side):
    # a black-holed database costs a request a few seconds, not the driver's 60 s default.
    connect_timeout: Seconds = Field(
        default=timedelta(seconds=5),
        gt=_ZERO,
        validation_alias=_env("LUMIO_DB_CONNECT_TIMEOUT_SECONDS"),
    )
    acquire_timeout: Seconds = Field(
        default=timedelta(seconds=5),
        gt=_ZERO,
        validation_alias=_env("LUMIO_DB_ACQUIRE_TIMEOUT_SECONDS"),
    )
    statement_timeout: Seconds = Field(
        default=timedelta(seconds=5),
        gt=_ZERO,
        validation_alias=_env("LUMIO_DB_STATEMENT_TIMEOUT_SECONDS"),
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return value


class RedisSettings(BaseSettings):
    model_config = _group("LUMIO_REDIS_")

    url: str | None = Field(default=None, validation_alias=_env("REDIS_URL", "LUMIO_REDIS_URL"))
    timeout: Seconds = Field(
        default=timedelta(seconds=1),
        gt=_ZERO,
        validation_alias=_env("LUMIO_REDIS_TIMEOUT_SECONDS"),
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
        return value


# --- Platforms: credentials, base URLs (tests and `lumio dev` point them at local fakes), limits.
# Every adapter reads the one shared LUMIO_PLATFORM_TIMEOUT_SECONDS for each HTTP request.


def _platform_timeout() -> Any:
    return Field(
        default=timedelta(seconds=10),
        gt=_ZERO,
        validation_alias=_env("LUMIO_PLATFORM_TIMEOUT_SECONDS"),
    )


class TwitchSettings(BaseSettings):
    model_config = _group("LUMIO_TWITCH_")

    client_id: str = ""
    client_secret: str = Field(default="", repr=False)
    api_base: str = "https://api.twitch.tv"
    id_base: str = "https://id.twitch.tv"
    timeout: Seconds = _platform_timeout()
    # Renew a token this long before Twitch says it expires, so no poll runs into the expiry.
    token_renew_margin: Seconds = Field(
        default=timedelta(minutes=5),
        ge=_ZERO,
        validation_alias=_env("LUMIO_TWITCH_TOKEN_RENEW_MARGIN_SECONDS"),
    )
    # Twitch asks apps that keep a token to check it with /oauth2/validate hourly.
    validate_interval: Seconds = Field(
        default=timedelta(hours=1),
        ge=_ZERO,
        validation_alias=_env("LUMIO_TWITCH_VALIDATE_INTERVAL_SECONDS"),
    )


class YouTubeSettings(BaseSettings):
    model_config = _group("LUMIO_YOUTUBE_")

    api_key: str = Field(default="", repr=False)
    api_base: str = "https://www.googleapis.com"
    feed_base: str = "https://www.youtube.com"
    # Units a day shared by every worker (the project's Data API quota).
    daily_quota: int = Field(default=10_000, ge=0)
    timeout: Seconds = _platform_timeout()
    # New feed entries confirmed per channel and cycle, newest first; the rest wait a cycle.
    candidates_per_channel: int = Field(default=5, ge=1)
    # A channel met for the first time: entries neither published nor updated within this window
    # are taken as finished uploads without spending quota (a live video is fresh or remembered).
    recent_window: Seconds = Field(
        default=timedelta(hours=48), validation_alias=_env("LUMIO_YOUTUBE_RECENT_WINDOW_SECONDS")
    )
    # A scheduled stream is confirmed every cycle from this long before its start ...
    upcoming_lead: Seconds = Field(
        default=timedelta(minutes=15), validation_alias=_env("LUMIO_YOUTUBE_UPCOMING_LEAD_SECONDS")
    )
    # ... until this long after it (it may never start) ...
    upcoming_overdue: Seconds = Field(
        default=timedelta(hours=6), validation_alias=_env("LUMIO_YOUTUBE_UPCOMING_OVERDUE_SECONDS")
    )
    # ... and otherwise once per interval, because streams start early and dates move.
    upcoming_recheck: Seconds = Field(
        default=timedelta(minutes=30),
        validation_alias=_env("LUMIO_YOUTUBE_UPCOMING_RECHECK_SECONDS"),
    )
    # Feed requests in flight at once per observe().
    feed_concurrency: int = Field(default=10, ge=1)
    # When a feed fails (other than 404), list the uploads playlist instead: 1 unit a channel.
    uploads_fallback: bool = False


class KickSettings(BaseSettings):
    model_config = _group("LUMIO_KICK_")

    client_id: str = ""
    client_secret: str = Field(default="", repr=False)
    api_base: str = "https://api.kick.com"
    id_base: str = "https://id.kick.com"
    timeout: Seconds = _platform_timeout()
    # Kick allows 50; KickDevDocs#321 reports wrong entries at 50, so operators may go lower.
    ids_per_request: int = Field(default=50, ge=1, le=50)


class TrovoSettings(BaseSettings):
    model_config = _group("LUMIO_TROVO_")

    client_id: str = ""
    api_base: str = "https://open-api.trovo.live"
    timeout: Seconds = _platform_timeout()
    # Requests in flight at once from the adapter, across all its batches.
    max_concurrency: int = Field(default=8, ge=1)


class DetectionSettings(BaseSettings):
    """DESIGN §3: the grace period before offline (per platform when overridden, e.g.
    LUMIO_GRACE_OVERRIDES='{"kick": 180}'), poll intervals and the worker's limits."""

    model_config = _group("LUMIO_")

    grace: Seconds = Field(
        default=timedelta(minutes=2), ge=_ZERO, validation_alias=_env("LUMIO_GRACE_SECONDS")
    )
    grace_overrides: dict[PlatformName, Seconds] = Field(
        default_factory=dict, validation_alias=_env("LUMIO_GRACE_OVERRIDES")
    )
    # Platforms whose API flaps at go-live need a second live sighting before "online".
    confirm_online_platforms: frozenset[PlatformName] = Field(
        default=frozenset({"twitch"}), validation_alias=_env("LUMIO_CONFIRM_ONLINE_PLATFORMS")
    )
    poll_offline: Seconds = Field(
        default=timedelta(seconds=60), gt=_ZERO, validation_alias=_env("LUMIO_POLL_OFFLINE_SECONDS")
    )
    poll_live: Seconds = Field(
        default=timedelta(seconds=30), gt=_ZERO, validation_alias=_env("LUMIO_POLL_LIVE_SECONDS")
    )
    poll_settling: Seconds = Field(
        default=timedelta(seconds=15),
        gt=_ZERO,
        validation_alias=_env("LUMIO_POLL_SETTLING_SECONDS"),
    )
    # A claimed batch is the worker's for this long; a dead worker's channels come back after it.
    lease: Seconds = Field(
        default=timedelta(seconds=60), gt=_ZERO, validation_alias=_env("LUMIO_LEASE_SECONDS")
    )
    # A partial batch waits for more channels to come due until its oldest is this late (and at
    # most 5 % of the offline interval), so that requests carry full batches.
    poll_batch_wait: Seconds = Field(
        default=timedelta(seconds=3),
        ge=_ZERO,
        validation_alias=_env("LUMIO_POLL_BATCH_WAIT_SECONDS"),
    )
    backoff_max: Seconds = Field(
        default=timedelta(minutes=5), gt=_ZERO, validation_alias=_env("LUMIO_BACKOFF_MAX_SECONDS")
    )
    # Batches in flight at once per platform in one worker process.
    concurrency: int = Field(default=2, ge=1, validation_alias=_env("LUMIO_WORKER_CONCURRENCY"))
    # Where `lumio worker` serves Prometheus metrics, /healthz and /readyz (0: any free port).
    metrics_port: int = Field(
        default=9464, ge=0, le=65535, validation_alias=_env("LUMIO_WORKER_METRICS_PORT")
    )


class SpotifySettings(BaseSettings):
    """DESIGN §6: the app's credentials, base URLs (tests and `lumio dev` use a fake), where
    Spotify sends the browser back (default: this API's /v1/spotify/callback), and the poller."""

    model_config = _group("LUMIO_SPOTIFY_")

    client_id: str = ""
    client_secret: str = Field(default="", repr=False)
    accounts_base: str = "https://accounts.spotify.com"
    api_base: str = "https://api.spotify.com"
    redirect_uri: str = ""
    # After the callback, send the browser here (with ?spotify=linked); empty: answer JSON.
    link_return_url: str = ""
    # AES-256-GCM key for the tokens at rest: 32 random bytes, base64url. Or a file holding it.
    # Earlier keys still decrypt (rotation): a JSON list of keys in the same form.
    token_key: str = Field(default="", repr=False)
    token_key_file: Path | None = None
    token_old_keys: list[str] = Field(default_factory=list, repr=False)
    # Poll intervals: while a track plays (or sooner, at the track's end), paused, nothing.
    poll_playing: Seconds = Field(
        default=timedelta(seconds=5),
        gt=_ZERO,
        validation_alias=_env("LUMIO_SPOTIFY_POLL_PLAYING_SECONDS"),
    )
    poll_paused: Seconds = Field(
        default=timedelta(seconds=15),
        gt=_ZERO,
        validation_alias=_env("LUMIO_SPOTIFY_POLL_PAUSED_SECONDS"),
    )
    poll_idle: Seconds = Field(
        default=timedelta(seconds=30),
        gt=_ZERO,
        validation_alias=_env("LUMIO_SPOTIFY_POLL_IDLE_SECONDS"),
    )
    refresh_margin: Seconds = Field(
        default=timedelta(minutes=5),
        ge=_ZERO,
        validation_alias=_env("LUMIO_SPOTIFY_REFRESH_MARGIN_SECONDS"),
    )
    # A 429 with reason QUOTA_EXCEEDED stops every request of the app for at least this long.
    quota_backoff: Seconds = Field(
        default=timedelta(minutes=15),
        ge=_ZERO,
        validation_alias=_env("LUMIO_SPOTIFY_QUOTA_BACKOFF_SECONDS"),
    )
    # The app's own ceiling on requests per rolling 30 s, shared by replicas (0: none).
    requests_per_30s: int = Field(default=0, ge=0)
    backoff_max: Seconds = Field(
        default=timedelta(minutes=5),
        gt=_ZERO,
        validation_alias=_env("LUMIO_SPOTIFY_BACKOFF_MAX_SECONDS"),
    )
    lease: Seconds = Field(
        default=timedelta(seconds=30),
        gt=_ZERO,
        validation_alias=_env("LUMIO_SPOTIFY_LEASE_SECONDS"),
    )
    reconcile_every: Seconds = Field(
        default=timedelta(seconds=60),
        gt=_ZERO,
        validation_alias=_env("LUMIO_SPOTIFY_RECONCILE_SECONDS"),
    )
    batch_size: int = Field(default=50, ge=1, le=1000)
    concurrency: int = Field(
        default=4, ge=1, validation_alias=_env("LUMIO_SPOTIFY_WORKER_CONCURRENCY")
    )
    # Where `lumio spotify-worker` serves metrics, /healthz and /readyz (0: any free port).
    metrics_port: int = Field(
        default=9465, ge=0, le=65535, validation_alias=_env("LUMIO_SPOTIFY_WORKER_METRICS_PORT")
    )
    timeout: Seconds = _platform_timeout()

    @field_validator("token_key")
    @classmethod
    def _check_token_key(cls, value: str) -> str:
        if value and not _is_aes256_key(value):
            raise ValueError(_KEY_HELP.format(name="LUMIO_SPOTIFY_TOKEN_KEY"))
        return value

    @field_validator("token_old_keys")
    @classmethod
    def _check_token_old_keys(cls, value: list[str]) -> list[str]:
        if not all(_is_aes256_key(key) for key in value):
            raise ValueError(_KEY_HELP.format(name="every key of LUMIO_SPOTIFY_TOKEN_OLD_KEYS"))
        return value


class PushSettings(BaseSettings):
    """Push ingestion (issue 11): platform callbacks as hints. Unset public URL: poll only."""

    model_config = _group("LUMIO_")

    # The base URL at which the platforms reach this installation, e.g. https://lumio.example.com.
    public_url: str = ""
    # The EventSub webhook secret (10 to 100 ASCII characters) Twitch signs every message with.
    twitch_eventsub_secret: str = Field(default="", repr=False)
    youtube_websub_hub: str = "https://pubsubhubbub.appspot.com/subscribe"
    # The offline poll interval of a channel whose push subscriptions are enabled (the safety net).
    poll_offline_with_push_seconds: float = Field(default=300.0, gt=0)
    # How often `lumio worker` compares the subscriptions with the platform's own list.
    push_reconcile_seconds: float = Field(default=180.0, gt=0)

    @field_validator("twitch_eventsub_secret")
    @classmethod
    def _check_twitch_eventsub_secret(cls, value: str) -> str:
        if value and not (10 <= len(value) <= 100 and value.isascii() and value.isprintable()):
            raise ValueError("LUMIO_TWITCH_EVENTSUB_SECRET must be 10 to 100 ASCII characters")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(
                "LUMIO_PUBLIC_URL must be an http(s):// URL, e.g. https://lumio.example.com"
            )
        return value.rstrip("/")


class RuntimeSettings(BaseSettings):
    """How every process waits for what it depends on (issue 9)."""

    model_config = _group("LUMIO_")

    # A process started while PostgreSQL or Redis is unreachable retries with backoff up to this.
    startup_retry_max: Seconds = Field(
        default=timedelta(seconds=10),
        gt=_ZERO,
        validation_alias=_env("LUMIO_STARTUP_RETRY_MAX_SECONDS"),
    )
    # `/healthz` of the API and the workers answers within this, whatever the database does.
    health_timeout: Seconds = Field(
        default=timedelta(seconds=1.5),
        gt=_ZERO,
        validation_alias=_env("LUMIO_HEALTH_TIMEOUT_SECONDS"),
    )


class HistorySettings(BaseSettings):
    model_config = _group("LUMIO_HISTORY_")

    # Raw viewer samples are kept this many days, then downsampled to one point per 5 minutes;
    # sessions (with segments and samples) are kept `days` (0: forever). Retention runs in
    # `lumio worker`, one replica at a time, in bounded batches.
    raw_days: float = Field(default=14.0, gt=0)
    days: float = Field(default=365.0, ge=0)
    retention_interval: Seconds = Field(
        default=timedelta(minutes=5),
        gt=_ZERO,
        validation_alias=_env("LUMIO_HISTORY_RETENTION_INTERVAL_SECONDS"),
    )
    retention_batch: int = Field(default=500, ge=1)


class WebhookSettings(BaseSettings):
    """Issue 13: outgoing webhooks (signed Standard Webhooks, Discord) and their delivery loop,
    which runs inside `lumio worker`."""

    model_config = _group("LUMIO_WEBHOOK_")

    # Endpoints on loopback, private, link-local or metadata addresses, and plain http://, are
    # refused unless this is true (tests and `lumio dev`, whose receivers are local).
    allow_private: bool = False
    # Per request: the whole exchange, and how much of the answer is read (the log keeps 1 KB).
    timeout: Seconds = Field(
        default=timedelta(seconds=5),
        gt=_ZERO,
        validation_alias=_env("LUMIO_WEBHOOK_TIMEOUT_SECONDS"),
    )
    max_response_bytes: int = Field(default=64 * 1024, ge=1024)
    # Pause of the delivery loop when nothing is due (the commit-to-delivery latency when idle).
    poll: Seconds = Field(
        default=timedelta(seconds=0.2),
        gt=_ZERO,
        validation_alias=_env("LUMIO_WEBHOOK_POLL_SECONDS"),
    )
    # Deliveries claimed per round and requests in flight at once per process.
    batch_size: int = Field(default=200, ge=1, le=5000)
    concurrency: int = Field(default=64, ge=1)
    # A claimed delivery is the claimer's for this long (a killed process's come back after it).
    lease: Seconds = Field(
        default=timedelta(seconds=30),
        gt=_ZERO,
        validation_alias=_env("LUMIO_WEBHOOK_LEASE_SECONDS"),
    )
    # An endpoint failing for this long is disabled; logs are kept this long.
    disable_after: Seconds = Field(
        default=timedelta(days=3),
        gt=_ZERO,
        validation_alias=_env("LUMIO_WEBHOOK_DISABLE_AFTER_SECONDS"),
    )
    log_retention: Seconds = Field(
        default=timedelta(days=14),
        gt=_ZERO,
        validation_alias=_env("LUMIO_WEBHOOK_LOG_RETENTION_SECONDS"),
    )
    # A rotated-away secret keeps signing beside the new one for this long.
    rotation_overlap: Seconds = Field(
        default=timedelta(hours=24),
        ge=_ZERO,
        validation_alias=_env("LUMIO_WEBHOOK_ROTATION_OVERLAP_SECONDS"),
    )


class LoggingSettings(BaseSettings):
    model_config = _group("LUMIO_LOG_")

    # "text": plain lines for people; "json": one JSON object per line for machines.
    format: Literal["text", "json"] = "text"

    @field_validator("format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class Settings(BaseSettings):
    model_config = _group("LUMIO_")

    data_dir: Path = Path(".lumio")
    # For the HTTP client the platform adapters share (each adapter also bounds its requests).
    platform_timeout: Seconds = _platform_timeout()
    api: ApiSettings = Field(default_factory=ApiSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    twitch: TwitchSettings = Field(default_factory=TwitchSettings)
    youtube: YouTubeSettings = Field(default_factory=YouTubeSettings)
    kick: KickSettings = Field(default_factory=KickSettings)
    trovo: TrovoSettings = Field(default_factory=TrovoSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    spotify: SpotifySettings = Field(default_factory=SpotifySettings)
    push: PushSettings = Field(default_factory=PushSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    def updated(self, changes: Mapping[str, object]) -> Settings:
        """A validated copy with some fields changed: a group's name maps to the changes of its
        fields, e.g. ``settings.updated({"redis": {"url": url}, "data_dir": path})``."""
        update = {name: self._changed(name, value) for name, value in changes.items()}
        return self.model_copy(update=update)

    def _changed(self, name: str, value: object) -> object:
        current = getattr(self, name)
        if isinstance(current, BaseModel) and isinstance(value, Mapping):
            # model_validate reads no environment: the group is the current one, changed (and
            # what was left to its default stays unset).
            return current.model_validate(current.model_dump(exclude_unset=True) | dict(value))
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
