"""Every platform adapter, built from the settings: the one place that knows them all."""

from __future__ import annotations

import httpx

from lumio.kit.settings import Settings
from lumio.platforms.base import Platform, PlatformAdapter
from lumio.platforms.kick import KickAdapter, KickConfig
from lumio.platforms.trovo import TrovoAdapter, TrovoConfig
from lumio.platforms.twitch import TwitchAdapter, TwitchConfig
from lumio.platforms.youtube import YouTubeAdapter, YouTubeConfig


def build_adapter(
    platform: Platform, settings: Settings, client: httpx.AsyncClient
) -> PlatformAdapter:
    timeout = settings.platform_timeout_seconds
    match platform:
        case Platform.TWITCH:
            twitch = TwitchConfig(
                settings.twitch_client_id,
                settings.twitch_client_secret,
                settings.twitch_api_base,
                settings.twitch_id_base,
                timeout,
            )
            return TwitchAdapter(client, twitch)
        case Platform.YOUTUBE:
            youtube = YouTubeConfig(
                settings.youtube_api_key,
                settings.youtube_api_base,
                settings.youtube_feed_base,
                timeout,
            )
            return YouTubeAdapter(client, youtube)
        case Platform.KICK:
            kick = KickConfig(
                settings.kick_client_id,
                settings.kick_client_secret,
                settings.kick_api_base,
                settings.kick_id_base,
                timeout,
            )
            return KickAdapter(kick, client)
        case Platform.TROVO:
            return TrovoAdapter(
                TrovoConfig(settings.trovo_client_id, settings.trovo_api_base, timeout), client
            )


def configured_platforms(settings: Settings) -> list[Platform]:
    """The platforms with credentials set; the worker polls only these."""
    configured = {
        Platform.TWITCH: bool(settings.twitch_client_id and settings.twitch_client_secret),
        Platform.YOUTUBE: bool(settings.youtube_api_key),
        Platform.KICK: bool(settings.kick_client_id and settings.kick_client_secret),
        Platform.TROVO: bool(settings.trovo_client_id),
    }
    return [platform for platform, ok in configured.items() if ok]
