"""GraphQL: webhooks, webhookDeliveries, createWebhook, updateWebhook, deleteWebhook,
rotateWebhookSecret, testWebhook (the same service calls as REST)."""

from __future__ import annotations

import strawberry

from lumio.kit.graphql import Info
from lumio.webhooks import service
from lumio.webhooks.schemas import (
    Webhook,
    WebhookDelivery,
    WebhookIn,
    WebhookPatch,
    WebhookWithSecret,
)


@strawberry.experimental.pydantic.type(model=Webhook, all_fields=True, name="Webhook")
class WebhookType:
    pass


@strawberry.experimental.pydantic.type(
    model=WebhookWithSecret, all_fields=True, name="WebhookWithSecret"
)
class WebhookWithSecretType:
    pass


@strawberry.experimental.pydantic.type(
    model=WebhookDelivery, all_fields=True, name="WebhookDelivery"
)
class WebhookDeliveryType:
    pass


async def _webhooks(info: Info) -> list[Webhook]:
    return await service.list_for(info.context.resources.db, info.context.principal)


async def _webhook_deliveries(info: Info, id: strawberry.ID) -> list[WebhookDelivery]:
    return await service.deliveries_for(info.context.resources.db, info.context.principal, id)


async def _create_webhook(
    info: Info,
    url: str,
    events: list[str],
    kind: str = "standard",
    description: str = "",
    template: str | None = None,
) -> WebhookWithSecret:
    ctx = info.context
    body = WebhookIn(url=url, events=events, kind=kind, description=description, template=template)
    return await service.create_for(ctx.resources.db, ctx.resources.settings, ctx.principal, body)


async def _update_webhook(
    info: Info,
    id: strawberry.ID,
    url: str | None = None,
    description: str | None = None,
    events: list[str] | None = None,
    enabled: bool | None = None,
    template: str | None = strawberry.UNSET,
) -> Webhook:
    ctx = info.context
    given = {"url": url, "description": description, "events": events, "enabled": enabled}
    if template is not strawberry.UNSET:
        given["template"] = template
    patch = WebhookPatch(**{k: v for k, v in given.items() if v is not None or k == "template"})
    res = ctx.resources
    return await service.update_for(res.db, res.settings, ctx.principal, id, patch)


async def _rotate(info: Info, id: strawberry.ID) -> WebhookWithSecret:
    ctx = info.context
    res = ctx.resources
    return await service.rotate_secret_for(res.db, res.settings, ctx.principal, id)


async def _test(info: Info, id: strawberry.ID) -> WebhookDelivery:
    return await service.test_for(info.context.resources.db, info.context.principal, id)


@strawberry.type
class WebhooksQuery:
    webhooks: list[Webhook] = strawberry.field(
        resolver=_webhooks,
        graphql_type=list[WebhookType],
        description="The account's webhook endpoints (webhooks:manage).",
    )
    webhook_deliveries: list[WebhookDelivery] = strawberry.field(
        resolver=_webhook_deliveries,
        graphql_type=list[WebhookDeliveryType],
        description="The latest deliveries of one endpoint, newest first.",
    )


@strawberry.type
class WebhooksMutation:
    create_webhook: WebhookWithSecret = strawberry.mutation(
        resolver=_create_webhook,
        graphql_type=WebhookWithSecretType,
        description="Add an endpoint; the answer carries its secret, once.",
    )
    update_webhook: Webhook = strawberry.mutation(
        resolver=_update_webhook, graphql_type=WebhookType, description="Edit an endpoint."
    )
    rotate_webhook_secret: WebhookWithSecret = strawberry.mutation(
        resolver=_rotate,
        graphql_type=WebhookWithSecretType,
        description="A new secret; the old one signs beside it for 24 h.",
    )
    test_webhook: WebhookDelivery = strawberry.mutation(
        resolver=_test,
        graphql_type=WebhookDeliveryType,
        description="Queue a test message to the endpoint.",
    )

    @strawberry.mutation(description="Delete an endpoint and its deliveries.")
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> bool:
        await service.delete_for(info.context.resources.db, info.context.principal, id)
        return True
