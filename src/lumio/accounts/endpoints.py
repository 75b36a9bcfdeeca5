"""REST: POST /v1/accounts (a signed-in user creates an account and becomes its Owner)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from pydantic import Field

from lumio.accounts import service
from lumio.kit.deps import ApiModel, AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.kit.permissions import RoleName

router = APIRouter(tags=["accounts"])


class CreateAccountIn(ApiModel):
    name: str = Field(min_length=1, max_length=200)


class CreatedAccountOut(ApiModel):
    id: UUID
    name: str
    role: str


@router.post(
    "/accounts", response_model=CreatedAccountOut, status_code=201, responses=errors(400, 401)
)
async def create_account(
    body: CreateAccountIn, principal: CurrentPrincipal, resources: AppResources
) -> CreatedAccountOut:
    account_id = await service.create_account_for(resources.db, principal, body.name)
    return CreatedAccountOut(id=account_id, name=body.name.strip(), role=RoleName.OWNER.value)
