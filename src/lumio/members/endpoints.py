"""REST: /v1/members (list, change role, remove) and /v1/invitations (invite, list, revoke, accept)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import Field
from starlette.responses import Response

from lumio.accounts.schemas import Member
from lumio.kit.deps import ApiModel, AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.members import service
from lumio.members.schemas import CreatedInvitation, Invitation, InviteOutcome

router = APIRouter(tags=["members"])


class MemberOut(ApiModel):
    user_id: UUID
    email: str
    role: str
    joined_at: datetime

    @classmethod
    def of(cls, member: Member) -> MemberOut:
        return cls(
            user_id=member.user_id,
            email=member.email,
            role=member.role.value,
            joined_at=member.joined_at,
        )


class InvitationOut(ApiModel):
    id: UUID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime
    token: str | None = Field(default=None, description="The link's secret; only when created")
    path: str | None = Field(default=None, description="The link, relative to the dashboard")

    @classmethod
    def of(cls, invitation: Invitation, created: CreatedInvitation | None = None) -> InvitationOut:
        return cls(
            id=invitation.id,
            email=invitation.email,
            role=invitation.role.value,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            token=created.token if created else None,
            path=created.path if created else None,
        )


class InviteResultOut(ApiModel):
    member: MemberOut | None
    invitation: InvitationOut | None

    @classmethod
    def of(cls, outcome: InviteOutcome) -> InviteResultOut:
        created = outcome.invitation
        return cls(
            member=MemberOut.of(outcome.member) if outcome.member else None,
            invitation=InvitationOut.of(created.invitation, created) if created else None,
        )


class RoleIn(ApiModel):
    role: str = Field(max_length=50, description="owner, administrator, moderator or viewer")


class InviteIn(ApiModel):
    email: str = Field(min_length=3, max_length=320)
    role: str = Field(max_length=50)


class AcceptIn(ApiModel):
    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class AcceptedOut(ApiModel):
    email: str
    account_id: UUID
    role: str


@router.get("/members", response_model=list[MemberOut], responses=errors(401, 403))
async def list_members(principal: CurrentPrincipal, resources: AppResources) -> list[MemberOut]:
    account_id, _ = await service.actor_of(resources.db, principal)
    return [MemberOut.of(m) for m in await service.list_members(resources.db, account_id)]


@router.put(
    "/members/{user_id}", response_model=MemberOut, responses=errors(400, 401, 403, 404, 409)
)
@router.patch(
    "/members/{user_id}",
    response_model=MemberOut,
    responses=errors(400, 401, 403, 404, 409),
    operation_id="patch_member_role",
)
async def change_member_role(
    user_id: UUID, body: RoleIn, principal: CurrentPrincipal, resources: AppResources
) -> MemberOut:
    res = resources
    account_id, actor = await service.actor_of(res.db, principal)
    role = service.parse_role(body.role)
    member = await service.change_role(
        res.db, res.redis, res.auth_cache, account_id, actor, user_id, role
    )
    return MemberOut.of(member)


@router.delete("/members/{user_id}", status_code=204, responses=errors(401, 403, 404, 409))
async def remove_member(
    user_id: UUID, principal: CurrentPrincipal, resources: AppResources
) -> Response:
    res = resources
    account_id, actor = await service.actor_of(res.db, principal)
    await service.remove_member(res.db, res.redis, res.auth_cache, account_id, actor, user_id)
    return Response(status_code=204)


@router.get("/invitations", response_model=list[InvitationOut], responses=errors(401, 403))
async def list_invitations(
    principal: CurrentPrincipal, resources: AppResources
) -> list[InvitationOut]:
    account_id, _ = await service.actor_of(resources.db, principal)
    return [InvitationOut.of(i) for i in await service.list_invitations(resources.db, account_id)]


@router.post(
    "/invitations",
    response_model=InviteResultOut,
    status_code=201,
    responses=errors(400, 401, 403, 409),
)
@router.post(
    "/members",
    response_model=InviteResultOut,
    status_code=201,
    responses=errors(400, 401, 403, 409),
)
async def invite_member(
    body: InviteIn, principal: CurrentPrincipal, resources: AppResources
) -> InviteResultOut:
    """An existing user becomes a member at once; anyone else gets a 7-day, single-use link."""
    account_id, actor = await service.actor_of(resources.db, principal)
    role = service.parse_role(body.role)
    outcome = await service.invite_member(resources.db, account_id, actor, body.email, role)
    return InviteResultOut.of(outcome)


@router.delete("/invitations/{invitation_id}", status_code=204, responses=errors(401, 403, 404))
async def revoke_invitation(
    invitation_id: UUID, principal: CurrentPrincipal, resources: AppResources
) -> Response:
    account_id, _ = await service.actor_of(resources.db, principal)
    await service.revoke_invitation(resources.db, account_id, invitation_id)
    return Response(status_code=204)


@router.post(
    "/invitations/accept",
    response_model=AcceptedOut,
    status_code=201,
    responses=errors(400, 404, 409),
)
async def accept_invitation(body: AcceptIn, resources: AppResources) -> AcceptedOut:
    """Sign up through an invitation link (no credentials: the link's secret is the credential)."""
    claimed = await service.accept_invitation(resources.db, body.token, body.password)
    return AcceptedOut(email=claimed.email, account_id=claimed.account_id, role=claimed.role.value)
