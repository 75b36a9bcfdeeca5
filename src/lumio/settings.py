"""One settings object for every process, read from the environment and validated at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    graphql_max_depth: int = Field(default=12, ge=2)
    graphql_max_tokens: int = Field(default=2000, ge=100)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    redis_timeout_seconds: float = Field(default=1.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
