"""One settings object for every process, read from the environment and validated at start."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_KEY_HELP = (
    "{name} must be 32 random bytes in base64url, e.g. the output of: python -c "
    "'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
)


def _is_aes256_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.strip().encode())) == 32
    except (ValueError, binascii.Error):
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUMIO_", extra="ignore")

    # Unprefixed on purpose: these are the names every hosting platform already uses.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "LUMIO_DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "LUMIO_REDIS_URL")
    )
    data_dir: Path = Path(".lumio")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    # "auto": Secure cookies when the request came over HTTPS (or a proxy says so).
    cookie_secure: bool | None = None
    session_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    # How long a verified key or session is trusted without asking PostgreSQL again.
    # Revocation clears it at once in every API process (Redis pub/sub); this bounds the
    # staleness when Redis is unreachable.
    auth_cache_seconds: float = Field(default=10.0, ge=0)
    manual_connect_ttl_seconds: int = Field(default=1800, ge=1)
    # The standard introspection query (GraphiQL, client generators) is 14 deep.
    graphql_max_depth: int = Field(default=15, ge=2)
    graphql_max_tokens: int = Field(default=2000, ge=100)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    redis_timeout_seconds: float = Field(default=1.0, gt=0)

    # Platform credentials and base URLs (tests and `lumio dev` point the URLs at local fakes).
    twitch_client_id: str = ""
    twitch_client_secret: str = ""
    twitch_api_base: str = "https://api.twitch.tv"
    twitch_id_base: str = "https://id.twitch.tv"
    youtube_api_key: str = ""
    youtube_api_base: str = "https://www.googleapis.com"
    youtube_feed_base: str = "https://www.youtube.com"
    # Units a day shared by every worker (the project's Data API quota).
    youtube_daily_quota: int = Field(default=10_000, ge=0)
    kick_client_id: str = ""
    kick_client_secret: str = ""
    kick_api_base: str = "https://api.kick.com"
    kick_id_base: str = "https://id.kick.com"
    trovo_client_id: str = ""
    trovo_api_base: str = "https://open-api.trovo.live"
    platform_timeout_seconds: float = Field(default=10.0, gt=0)

    # Detection (DESIGN §3): the grace period before offline, per platform when overridden,
    # e.g. LUMIO_GRACE_OVERRIDES='{"kick": 180}'.
    grace_seconds: float = Field(default=120.0, ge=0)
    grace_overrides: dict[str, float] = Field(default_factory=dict)
    # Platforms whose API flaps at go-live need a second live sighting before "online".
    confirm_online_platforms: list[str] = Field(default_factory=lambda: ["twitch"])
    poll_offline_seconds: float = Field(default=60.0, gt=0)
    poll_live_seconds: float = Field(default=30.0, gt=0)
    poll_settling_seconds: float = Field(default=15.0, gt=0)
    # A claimed batch is the worker's for this long; a dead worker's channels come back after it.
    lease_seconds: float = Field(default=60.0, gt=0)
    # A partial batch waits for more channels to come due until its oldest is this late (and at
    # most 5 % of the offline interval), so that requests carry full batches.
    poll_batch_wait_seconds: float = Field(default=3.0, ge=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    # Batches in flight at once per platform in one worker process.
    worker_concurrency: int = Field(default=2, ge=1)
    # Where `lumio worker` serves Prometheus metrics (0: not served).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)

    # --- Push ingestion (issue 11): platform callbacks as hints. Unset public URL: poll only. ---
    # The base URL at which the platforms reach this installation, e.g. https://lumio.example.com.
    public_url: str = ""
    # The EventSub webhook secret (10 to 100 ASCII characters) Twitch signs every message with.
    twitch_eventsub_secret: str = Field(default="", repr=False)
    youtube_websub_hub: str = "https://pubsubhubbub.appspot.com/subscribe"
    # The offline poll interval of a channel whose push subscriptions are enabled (the safety net).
    poll_offline_with_push_seconds: float = Field(default=300.0, gt=0)
    # How often `lumio worker` compares the subscriptions with the platform's own list.
    push_reconcile_seconds: float = Field(default=180.0, gt=0)

    # Spotify (DESIGN §6): the app's credentials, base URLs (tests and `lumio dev` use a fake),
    # and where Spotify sends the browser back (default: this API's /v1/spotify/callback).
    spotify_client_id: str = ""
    spotify_client_secret: str = ""
    spotify_accounts_base: str = "https://accounts.spotify.com"
    spotify_api_base: str = "https://api.spotify.com"
    spotify_redirect_uri: str = ""
    # After the callback, send the browser here (with ?spotify=linked); empty: answer JSON.
    spotify_link_return_url: str = ""
    # AES-256-GCM key for the tokens at rest: 32 random bytes, base64url. Or a file holding it.
    # Earlier keys still decrypt (rotation): a JSON list of keys in the same form.
    spotify_token_key: str = Field(default="", repr=False)
    spotify_token_key_file: Path | None = None
    spotify_token_old_keys: list[str] = Field(default_factory=list, repr=False)
    # Poll intervals: while a track plays (or sooner, at the track's end), paused, nothing.
    spotify_poll_playing_seconds: float = Field(default=5.0, gt=0)
    spotify_poll_paused_seconds: float = Field(default=15.0, gt=0)
    spotify_poll_idle_seconds: float = Field(default=30.0, gt=0)
    spotify_refresh_margin_seconds: float = Field(default=300.0, ge=0)
    # A 429 with reason QUOTA_EXCEEDED stops every request of the app for at least this long.
    spotify_quota_backoff_seconds: float = Field(default=900.0, ge=0)
    # The app's own ceiling on requests per rolling 30 s, shared by replicas (0: none).
    spotify_requests_per_30s: int = Field(default=0, ge=0)
    spotify_backoff_max_seconds: float = Field(default=300.0, gt=0)
    spotify_lease_seconds: float = Field(default=30.0, gt=0)
    spotify_reconcile_seconds: float = Field(default=60.0, gt=0)
    spotify_batch_size: int = Field(default=50, ge=1, le=1000)
    spotify_worker_concurrency: int = Field(default=4, ge=1)
    spotify_worker_metrics_port: int = Field(default=0, ge=0, le=65535)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return value

    @field_validator("spotify_token_key")
    @classmethod
    def _check_spotify_token_key(cls, value: str) -> str:
        if value and not _is_aes256_key(value):
            raise ValueError(_KEY_HELP.format(name="LUMIO_SPOTIFY_TOKEN_KEY"))
        return value

    @field_validator("spotify_token_old_keys")
    @classmethod
    def _check_spotify_token_old_keys(cls, value: list[str]) -> list[str]:
        if not all(_is_aes256_key(key) for key in value):
            raise ValueError(_KEY_HELP.format(name="every key of LUMIO_SPOTIFY_TOKEN_OLD_KEYS"))
        return value

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

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
