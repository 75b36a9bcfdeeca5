"""Discord endpoints: a message instead of the signed JSON.

Go-live posts an embed (platform, title, category, link, start) under the endpoint's template;
the end edits that message to "ended — streamed 2 h 13 min" (its id is stored at the post).
Discord's 429 ``retry_after`` sets the next attempt.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import httpx
import orjson

from lumio.webhooks import repository
from lumio.webhooks.schemas import Claimed, EventType, Outcome, data_of
from lumio.webhooks.ssrf import Target


class Sender(Protocol):
    """The delivery loop's sender (delivery.Sender): one HTTP attempt, and the database."""

    db: asyncpg.Pool

    async def attempt(
        self,
        claimed: Claimed,
        now: datetime,
        target: Target,
        method: str,
        url: httpx.URL,
        body: bytes,
        headers: dict[str, str],
    ) -> Outcome: ...


DEFAULT_TEMPLATE = "{title} is live on {platform}: {url}"
PLACEHOLDERS = re.compile(r"\{(platform|title|category|url|viewers)\}")
_PLATFORMS = {"twitch": "Twitch", "youtube": "YouTube", "kick": "Kick", "trovo": "Trovo"}


def render(template: str | None, data: dict[str, Any]) -> str:
    """The template with its placeholders filled (unknown braces stay as written)."""
    values = {
        "platform": _PLATFORMS.get(str(data.get("platform")), str(data.get("platform") or "")),
        "title": data.get("title") or data.get("channel_name") or "",
        "category": data.get("category") or "",
        "url": data.get("url") or "",
        "viewers": "" if data.get("viewers") is None else str(data["viewers"]),
    }
    return PLACEHOLDERS.sub(lambda m: values[m.group(1)], template or DEFAULT_TEMPLATE)[:2000]


def live_message(template: str | None, data: dict[str, Any]) -> dict[str, Any]:
    fields = [
        {"name": "Platform", "value": render("{platform}", data) or "?", "inline": True},
        {"name": "Category", "value": data.get("category") or "—", "inline": True},
    ]
    embed: dict[str, Any] = {"title": (data.get("title") or "Live now")[:256], "fields": fields}
    if data.get("url"):
        embed["url"] = data["url"]
    if data.get("started_at"):
        embed["timestamp"] = data["started_at"]
    return {"content": render(template, data), "embeds": [embed], "allowed_mentions": {"parse": []}}


def streamed(seconds: float) -> str:
    hours, minutes = divmod(int(seconds) // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def ended_text(data: dict[str, Any], started_at: datetime | None, ended_at: datetime) -> str:
    platform = render("{platform}", data)
    if data.get("duration_seconds") is not None:
        return f"{platform}: ended — streamed {streamed(data['duration_seconds'])}"
    if started_at is not None:
        return f"{platform}: ended — streamed {streamed((ended_at - started_at).total_seconds())}"
    return f"{platform}: ended"


def other_text(event_type: str, data: dict[str, Any]) -> str:
    if event_type == EventType.TEST:
        return "A test message from Lumio: this Discord webhook works."
    return f"{render('{platform}', data) or 'Lumio'}: {event_type.replace('_', ' ')}"


async def send(sender: Sender, claimed: Claimed, target: Target, now: datetime) -> Outcome:
    data = data_of(claimed.body)
    if claimed.event_type == EventType.WENT_ONLINE:
        return await _post_live(sender, claimed, target, now, data)
    if claimed.event_type == EventType.WENT_OFFLINE:
        return await _edit_ended(sender, claimed, target, now, data)
    return await _post(
        sender, claimed, target, now, {"content": other_text(claimed.event_type, data)}
    )


async def _post(
    sender: Sender, claimed: Claimed, target: Target, now: datetime, message: dict[str, Any]
) -> Outcome:
    url = target.url.copy_merge_params({"wait": "true"})
    body, headers = orjson.dumps(message), {"content-type": "application/json"}
    return _honour_429(await sender.attempt(claimed, now, target, "POST", url, body, headers))


async def _post_live(
    sender: Sender, claimed: Claimed, target: Target, now: datetime, data: dict[str, Any]
) -> Outcome:
    outcome = await _post(sender, claimed, target, now, live_message(claimed.template, data))
    message_id = _message_id(outcome)
    if outcome.ok and message_id is not None:
        started = datetime.fromisoformat(data["started_at"]) if data.get("started_at") else None
        await repository.save_discord_message(
            sender.db, claimed.endpoint_id, claimed.channel_key, message_id, started
        )
    return outcome


async def _edit_ended(
    sender: Sender, claimed: Claimed, target: Target, now: datetime, data: dict[str, Any]
) -> Outcome:
    posted = await repository.get_discord_message(
        sender.db, claimed.endpoint_id, claimed.channel_key
    )
    if posted is None:
        return await _post(sender, claimed, target, now, {"content": ended_text(data, None, now)})
    message_id, started_at = posted
    url = target.url.copy_with(path=f"{target.url.path.rstrip('/')}/messages/{message_id}")
    edit = orjson.dumps({"content": ended_text(data, started_at, now)})
    headers = {"content-type": "application/json"}
    outcome = _honour_429(await sender.attempt(claimed, now, target, "PATCH", url, edit, headers))
    if outcome.ok or outcome.status == 404:
        # Edited, or deleted on Discord's side: nothing left to edit either way.
        outcome.ok = True
        await repository.forget_discord_message(sender.db, claimed.endpoint_id, claimed.channel_key)
    return outcome


def _message_id(outcome: Outcome) -> str | None:
    try:
        found = orjson.loads(outcome.response_body or "{}").get("id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return str(found) if found else None


def _honour_429(outcome: Outcome) -> Outcome:
    if outcome.status != 429:
        return outcome
    try:
        outcome.retry_after = float(orjson.loads(outcome.response_body or "{}")["retry_after"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        outcome.retry_after = 5.0
    return outcome
