"""Managing an account's webhook endpoints (webhooks:manage): create, edit, delete, rotate the
secret, send a test, read and redeliver deliveries. REST and GraphQL call these."""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg

from lumio.kit.clock import utc_now
from lumio.kit.crypto import cipher_for, webhook_secret_context
from lumio.kit.errors import BadRequest, NotFound
from lumio.kit.permissions import Permission
from lumio.kit.principal import Principal
from lumio.kit.settings import Settings
from lumio.webhooks import repository, ssrf
from lumio.webhooks.outbox import test_notice
from lumio.webhooks.schemas import (
    EventType,
    Kind,
    Webhook,
    WebhookDelivery,
    WebhookIn,
    WebhookPatch,
    WebhookWithSecret,
)
from lumio.webhooks.signing import new_secret

DELIVERIES_SHOWN = 50
DISCORD_HOSTS = ("discord.com", "discordapp.com", "canary.discord.com", "ptb.discord.com")


def parse_id(value: str | UUID, what: str = "webhook") -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(value)
    except ValueError as exc:
        raise NotFound(f"no {what} {value!r}") from exc


def _check_events(events: list[str]) -> list[str]:
    known = {e.value for e in EventType}
    unknown = [e for e in events if e not in known]
    if unknown:
        raise BadRequest(f"unknown event type(s) {unknown}; known: {', '.join(sorted(known))}")
    return sorted(set(events))


async def _check_url(settings: Settings, url: str, kind: str) -> None:
    allow_private = settings.webhooks.allow_private
    target = await ssrf.check(url, allow_private)
    if kind == Kind.DISCORD and not allow_private and target.host not in DISCORD_HOSTS:
        raise BadRequest("a discord webhook URL is https://discord.com/api/webhooks/...")


async def _checked(settings: Settings, body: WebhookIn) -> WebhookIn:
    if body.kind not in {k.value for k in Kind}:
        raise BadRequest("kind is standard or discord")
    await _check_url(settings, body.url, body.kind)
    return body.model_copy(update={"events": _check_events(body.events)})


def _sealed(settings: Settings, endpoint_id: UUID, secret: str) -> bytes:
    return cipher_for(settings).encrypt(secret, webhook_secret_context(endpoint_id))


def _with_secret(webhook: Webhook, secret: str) -> WebhookWithSecret:
    return WebhookWithSecret(**webhook.model_dump(), secret=secret)


async def create_for(
    db: asyncpg.Pool, settings: Settings, principal: Principal, body: WebhookIn
) -> WebhookWithSecret:
    account_id = principal.require(Permission.WEBHOOKS_MANAGE)
    checked = await _checked(settings, body)
    endpoint_id, secret = uuid4(), new_secret()
    sealed = _sealed(settings, endpoint_id, secret)
    webhook = await repository.insert_endpoint(
        db, endpoint_id, account_id, checked, sealed, utc_now()
    )
    return _with_secret(webhook, secret)


async def list_for(db: asyncpg.Pool, principal: Principal) -> list[Webhook]:
    account_id = principal.require(Permission.WEBHOOKS_MANAGE)
    return await repository.list_endpoints(db, account_id, utc_now())


async def _current(db: asyncpg.Pool, account_id: UUID, endpoint_id: UUID) -> Webhook:
    webhook = await repository.get_endpoint(db, account_id, endpoint_id, utc_now())
    if webhook is None:
        raise NotFound(f"no webhook {endpoint_id}")
    return webhook


async def update_for(
    db: asyncpg.Pool,
    settings: Settings,
    principal: Principal,
    endpoint_id: str | UUID,
    patch: WebhookPatch,
) -> Webhook:
    account_id = principal.require(Permission.WEBHOOKS_MANAGE)
    current = await _current(db, account_id, parse_id(endpoint_id))
    if patch.url is not None:
        await _check_url(settings, patch.url, current.kind)
    if patch.events is not None:
        patch = patch.model_copy(update={"events": _check_events(patch.events)})
    updated = await repository.update_endpoint(db, account_id, current.id, patch, utc_now())
    if updated is None:
        raise NotFound(f"no webhook {endpoint_id}")
    return updated


async def delete_for(db: asyncpg.Pool, principal: Principal, endpoint_id: str | UUID) -> None:
    account_id = principal.require(Permission.WEBHOOKS_MANAGE)
    if not await repository.delete_endpoint(db, account_id, parse_id(endpoint_id)):
        raise NotFound(f"no webhook {endpoint_id}")


async def rotate_secret_for(
    db: asyncpg.Pool, settings: Settings, principal: Principal, endpoint_id: str | UUID
) -> WebhookWithSecret:
    """A new secret; the old one keeps signing beside it for the overlap (24 h by default)."""
    account_id = principal.require(Permission.WEBHOOKS_MANAGE)
    found, secret, now = parse_id(endpoint_id), new_secret(), utc_now()
    until = now + settings.webhooks.rotation_overlap
    sealed = _sealed(settings, found, secret)
    webhook = await repository.rotate_secret(db, account_id, found, sealed, until, now)
    if webhook is None:
        raise NotFound(f"no webhook {endpoint_id}")
    return _with_secret(webhook, secret)


async def test_for(
    db: asyncpg.Pool, principal: Principal, endpoint_id: str | UUID
) -> WebhookDelivery:
    account_id = principal.require(Permission.WEBHOOKS_MANAGE)
    webhook = await _current(db, account_id, parse_id(endpoint_id))
    delivery_id = await repository.enqueue_for_endpoint(
        db, webhook.id, test_notice(account_id, utc_now())
    )
    return await _delivery(db, account_id, webhook.id, delivery_id)


async def deliveries_for(
    db: asyncpg.Pool, principal: Principal, endpoint_id: str | UUID
) -> list[WebhookDelivery]:
    account_id = principal.require(Permission.WEBHOOKS_MANAGE)
    webhook = await _current(db, account_id, parse_id(endpoint_id))
    return await repository.list_deliveries(db, account_id, webhook.id, DELIVERIES_SHOWN)


async def redeliver_for(
    db: asyncpg.Pool, principal: Principal, endpoint_id: str | UUID, delivery_id: str | UUID
) -> WebhookDelivery:
    """Send the same message (the same webhook-id) again, now."""
    account_id = principal.require(Permission.WEBHOOKS_MANAGE)
    endpoint, delivery = parse_id(endpoint_id), parse_id(delivery_id, "delivery")
    redone = await repository.redeliver(db, account_id, endpoint, delivery, utc_now())
    if redone is None:
        raise NotFound(f"no delivery {delivery_id} of webhook {endpoint_id}")
    return redone


async def _delivery(
    db: asyncpg.Pool, account_id: UUID, endpoint_id: UUID, delivery_id: UUID
) -> WebhookDelivery:
    found = await repository.get_delivery(db, account_id, endpoint_id, delivery_id)
    assert found is not None
    return found
