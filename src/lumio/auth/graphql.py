"""GraphQL: my accounts and switching the active account."""

from __future__ import annotations

from uuid import UUID

import strawberry

from lumio.auth import service
from lumio.auth.schemas import AccountView
from lumio.kit.errors import BadRequest
from lumio.kit.graphql import Info


@strawberry.type(name="Account")
class AccountType:
    id: strawberry.ID
    name: str
    role: str
    active: bool

    @classmethod
    def of(cls, view: AccountView) -> AccountType:
        return cls(
            id=strawberry.ID(str(view.id)), name=view.name, role=view.role, active=view.active
        )


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The accounts you are a member of; one is active.")
    async def my_accounts(self, info: Info) -> list[AccountType]:
        ctx = info.context
        return [
            AccountType.of(v) for v in await service.my_accounts(ctx.resources.db, ctx.principal)
        ]


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Make another of your accounts the session's active one.")
    async def switch_account(self, info: Info, account_id: strawberry.ID) -> list[AccountType]:
        ctx = info.context
        try:
            target = UUID(str(account_id))
        except ValueError as exc:
            raise BadRequest("accountId is not a valid id") from exc
        res = ctx.resources
        await service.switch_account(res.db, res.redis, res.auth_cache, ctx.principal, target)
        ctx.principal = await service.reload_session(
            res.db, res.auth_cache, ctx.principal.token_hash
        )
        return [AccountType.of(v) for v in await service.my_accounts(res.db, ctx.principal)]
