"""REST: GET /v1/admin/budgets."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from lumio.budgets import service
from lumio.budgets.schemas import PlatformBudget
from lumio.kit.deps import AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.kit.views import views_response

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/budgets",
    response_model=list[PlatformBudget],
    responses=errors(401, 403, 503),
    summary="Every platform's shared budget: rate limits, YouTube's daily quota and freshness",
)
async def get_budgets(principal: CurrentPrincipal, resources: AppResources) -> Response:
    budgets = await service.read_budgets(
        resources.db, resources.redis, resources.settings, principal
    )
    return views_response(budgets)
