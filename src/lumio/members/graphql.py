"""GraphQL: members, inviteMember, changeMemberRole, removeMember."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from lumio.accounts.schemas import Member
from lumio.kit.errors import BadRequest
from lumio.kit.graphql import Info
from lumio.members import service
from lumio.members.schemas import CreatedInvitation, InviteOutcome


@strawberry.type(name="Member")
class MemberType:
    user_id: strawberry.ID
    email: str
    role: str
    joined_at: datetime

    @classmethod
    def of(cls, member: Member) -> MemberType:
        return cls(
            user_id=strawberry.ID(str(member.user_id)),
            email=member.email,
            role=member.role.value,
            joined_at=member.joined_at,
        )


@strawberry.type(name="Invitation")
class InvitationType:
    id: strawberry.ID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime
    token: str
    path: str

    @classmethod
    def of(cls, created: CreatedInvitation) -> InvitationType:
        invitation = created.invitation
        return cls(
            id=strawberry.ID(str(invitation.id)),
            email=invitation.email,
            role=invitation.role.value,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            token=created.token,
            path=created.path,
        )


@strawberry.type(name="InviteResult")
class InviteResultType:
    member: MemberType | None
    invitation: InvitationType | None

    @classmethod
    def of(cls, outcome: InviteOutcome) -> InviteResultType:
        return cls(
            member=MemberType.of(outcome.member) if outcome.member else None,
            invitation=InvitationType.of(outcome.invitation) if outcome.invitation else None,
        )


def _user_id(value: strawberry.ID) -> UUID:
    try:
        return UUID(str(value))
    except ValueError as exc:
        raise BadRequest("userId is not a valid id") from exc


@strawberry.type
class MembersQuery:
    @strawberry.field(description="The active account's members and their roles.")
    async def members(self, info: Info) -> list[MemberType]:
        db = info.context.resources.db
        account_id, _ = await service.actor_of(db, info.context.principal)
        return [MemberType.of(m) for m in await service.list_members(db, account_id)]


@strawberry.type
class MembersMutation:
    @strawberry.mutation(description="Add a user by email, or make a 7-day invitation link.")
    async def invite_member(self, info: Info, email: str, role: str) -> InviteResultType:
        db = info.context.resources.db
        account_id, actor = await service.actor_of(db, info.context.principal)
        parsed = service.parse_role(role)
        return InviteResultType.of(
            await service.invite_member(db, account_id, actor, email, parsed)
        )

    @strawberry.mutation(description="Change a member's role.")
    async def change_member_role(self, info: Info, user_id: strawberry.ID, role: str) -> MemberType:
        res = info.context.resources
        account_id, actor = await service.actor_of(res.db, info.context.principal)
        member = await service.change_role(
            res.db,
            res.redis,
            res.auth_cache,
            account_id,
            actor,
            _user_id(user_id),
            service.parse_role(role),
        )
        return MemberType.of(member)

    @strawberry.mutation(description="Remove a member from the active account.")
    async def remove_member(self, info: Info, user_id: strawberry.ID) -> bool:
        res = info.context.resources
        account_id, actor = await service.actor_of(res.db, info.context.principal)
        await service.remove_member(
            res.db, res.redis, res.auth_cache, account_id, actor, _user_id(user_id)
        )
        return True
