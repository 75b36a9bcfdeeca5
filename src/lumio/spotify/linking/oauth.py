"""The Spotify accounts service: the authorisation URL, the token endpoint and the profile.

Shapes follow PLATFORM_APIS.md §5: the token endpoint may omit ``refresh_token`` and answers
``invalid_grant`` for an expired or revoked code or refresh token; a 429 carries ``Retry-After``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lumio.kit.settings import Settings
from lumio.spotify.schemas import SpotifyProfile, TokenGrant

SCOPES = ("user-read-currently-playing", "user-read-playback-state")
PROFILE_PATH = "/v1/me"
TOKEN_PATH = "/api/token"  # noqa: S105 (a path, not a secret)
AUTHORIZE_PATH = "/authorize"
# Spotify sends Retry-After with every 429; this is only for one that lacks it.
DEFAULT_RETRY_AFTER = 5.0


class TokenError(Exception):
    """The accounts service did not give a token."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class InvalidGrant(TokenError):
    """The refresh token (or code) is expired, revoked or unknown: only a new link helps."""


class SpotifyModel(BaseModel):
    """Spotify's JSON: only the fields Lumio reads; others are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class _TokenBody(SpotifyModel):
    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int = Field(gt=0)
    refresh_token: str | None = None
    scope: str = ""


class _TokenErrorBody(SpotifyModel):
    error: str
    error_description: str = ""


class _Profile(SpotifyModel):
    id: str = Field(min_length=1)
    display_name: str | None = None


def retry_after(headers: Mapping[str, str]) -> float:
    raw = headers.get("retry-after", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return DEFAULT_RETRY_AFTER


@dataclass(frozen=True, slots=True)
class SpotifyApp:
    client_id: str
    client_secret: str
    accounts_base: str
    api_base: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SpotifyApp:
        return cls(
            settings.spotify.client_id,
            settings.spotify.client_secret,
            settings.spotify.accounts_base.rstrip("/"),
            settings.spotify.api_base.rstrip("/"),
        )

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def basic_auth(self) -> str:
        pair = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "client_id": self.client_id,
                "response_type": "code",
                "redirect_uri": redirect_uri,
                "scope": " ".join(SCOPES),
                "state": state,
            }
        )
        return f"{self.accounts_base}{AUTHORIZE_PATH}?{query}"


class SpotifyAccounts:
    """One app's calls to the accounts service (codes, refreshes) and the profile, through
    ``http`` (the caller's); ``requests_sent`` counts them."""

    def __init__(self, http: httpx.AsyncClient, app: SpotifyApp, user_agent: str = "lumio") -> None:
        self.http = http
        self.app = app
        self.headers = {"User-Agent": user_agent}
        self.requests_sent = 0

    async def exchange_code(self, code: str, redirect_uri: str, now: datetime) -> TokenGrant:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return await self._token(form, now)

    async def refresh(self, refresh_token: str, now: datetime) -> TokenGrant:
        return await self._token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, now
        )

    async def _token(self, form: dict[str, str], now: datetime) -> TokenGrant:
        headers = {**self.headers, "Authorization": self.app.basic_auth()}
        try:
            response = await self.http.post(
                self.app.accounts_base + TOKEN_PATH, data=form, headers=headers
            )
        except httpx.HTTPError as exc:
            raise TokenError(f"the accounts service did not answer: {exc!r}") from exc
        finally:
            self.requests_sent += 1
        if response.status_code == 200:
            return _grant(response, now)
        if response.status_code == 429:
            raise TokenError("the accounts service is rate limiting", retry_after(response.headers))
        try:
            error = _TokenErrorBody.model_validate_json(response.content)
        except ValidationError:
            raise TokenError(f"token endpoint answered {response.status_code}") from None
        if error.error == "invalid_grant":
            raise InvalidGrant(error.error_description or "invalid_grant")
        raise TokenError(f"{error.error}: {error.error_description}".rstrip(": "))

    async def profile(self, access_token: str) -> SpotifyProfile:
        """The linked user (``GET /v1/me``); raises TokenError when it cannot be read."""
        try:
            response = await self._get(PROFILE_PATH, access_token)
            response.raise_for_status()
            profile = _Profile.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError) as exc:
            raise TokenError(f"could not read the Spotify profile: {exc}") from exc
        return SpotifyProfile(profile.id, profile.display_name)

    async def _get(self, path: str, access_token: str) -> httpx.Response:
        headers = {**self.headers, "Authorization": f"Bearer {access_token}"}
        try:
            return await self.http.get(self.app.api_base + path, headers=headers)
        finally:
            self.requests_sent += 1


def _grant(response: httpx.Response, now: datetime) -> TokenGrant:
    try:
        body = _TokenBody.model_validate_json(response.content)
    except ValidationError as exc:
        raise TokenError("the token endpoint answered an unexpected body") from exc
    if body.token_type.lower() != "bearer":
        raise TokenError(f"unexpected token type {body.token_type!r}")
    return TokenGrant(
        access_token=body.access_token,
        expires_at=now + timedelta(seconds=body.expires_in),
        refresh_token=body.refresh_token,
        scope=body.scope,
    )
