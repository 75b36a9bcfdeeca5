"""REST: /v1/webhooks (list, create, edit, delete, rotate the secret, test, deliveries, redeliver)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from lumio.kit.deps import AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.webhooks import service
from lumio.webhooks.schemas import (
    Webhook,
    WebhookDelivery,
    WebhookIn,
    WebhookPatch,
    WebhookWithSecret,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.get("", response_model=list[Webhook], responses=errors(401, 403))
async def list_webhooks(principal: CurrentPrincipal, resources: AppResources) -> list[Webhook]:
    return await service.list_for(resources.db, principal)


@router.post(
    "", response_model=WebhookWithSecret, status_code=201, responses=errors(400, 401, 403, 503)
)
async def create_webhook(
    body: WebhookIn, principal: CurrentPrincipal, resources: AppResources
) -> WebhookWithSecret:
    return await service.create_for(resources.db, resources.settings, principal, body)


@router.patch("/{webhook_id}", response_model=Webhook, responses=errors(400, 401, 403, 404))
async def update_webhook(
    webhook_id: str, body: WebhookPatch, principal: CurrentPrincipal, resources: AppResources
) -> Webhook:
    return await service.update_for(resources.db, resources.settings, principal, webhook_id, body)


@router.delete("/{webhook_id}", status_code=204, responses=errors(401, 403, 404))
async def delete_webhook(
    webhook_id: str, principal: CurrentPrincipal, resources: AppResources
) -> Response:
    await service.delete_for(resources.db, principal, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    responses=errors(401, 403, 404, 503),
)
async def rotate_webhook_secret(
    webhook_id: str, principal: CurrentPrincipal, resources: AppResources
) -> WebhookWithSecret:
    return await service.rotate_secret_for(resources.db, resources.settings, principal, webhook_id)


@router.post(
    "/{webhook_id}/test",
    response_model=WebhookDelivery,
    status_code=202,
    responses=errors(401, 403, 404),
)
async def test_webhook(
    webhook_id: str, principal: CurrentPrincipal, resources: AppResources
) -> WebhookDelivery:
    return await service.test_for(resources.db, principal, webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[WebhookDelivery],
    responses=errors(401, 403, 404),
)
async def webhook_deliveries(
    webhook_id: str, principal: CurrentPrincipal, resources: AppResources
) -> list[WebhookDelivery]:
    return await service.deliveries_for(resources.db, principal, webhook_id)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=WebhookDelivery,
    status_code=202,
    responses=errors(401, 403, 404),
)
async def redeliver_webhook(
    webhook_id: str, delivery_id: str, principal: CurrentPrincipal, resources: AppResources
) -> WebhookDelivery:
    return await service.redeliver_for(resources.db, principal, webhook_id, delivery_id)
