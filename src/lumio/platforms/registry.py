"""Every platform adapter, built from the settings: the one place that knows them all."""

from __future__ import annotations

import httpx

from lumio.kit.settings import Settings
from lumio.platforms.base import Platform, PlatformAdapter
from lumio.platforms.kick import KickAdapter
from lumio.platforms.trovo import TrovoAdapter
from lumio.platforms.twitch import TwitchAdapter
from lumio.platforms.youtube import YouTubeAdapter


def build_adapter(
    platform: Platform, settings: Settings, client: httpx.AsyncClient
) -> PlatformAdapter:
    match platform:
        case Platform.TWITCH:
            return TwitchAdapter(client, settings.twitch)
        case Platform.YOUTUBE:
            return YouTubeAdapter(client, settings.youtube)
        case Platform.KICK:
            return KickAdapter(settings.kick, client)
        case Platform.TROVO:
            return TrovoAdapter(settings.trovo, client)


def configured_platforms(settings: Settings) -> list[Platform]:
    """The platforms with credentials set; the worker polls only these."""
    configured = {
        Platform.TWITCH: bool(settings.twitch.client_id and settings.twitch.client_secret),
        Platform.YOUTUBE: bool(settings.youtube.api_key),
        Platform.KICK: bool(settings.kick.client_id and settings.kick.client_secret),
        Platform.TROVO: bool(settings.trovo.client_id),
    }
    return [platform for platform, ok in configured.items() if ok]
