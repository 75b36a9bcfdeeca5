"""GraphQL: my accounts and switching the active account."""

from __future__ import annotations

from uuid import UUID

import strawberry

from lumio.auth import service
from lumio.auth.schemas import AccountView
from lumio.kit.errors import BadRequest
from lumio.kit.graphql import Info


@strawberry.experimental.pydantic.type(model=AccountView, all_fields=True, name="Account")
class AccountType:
    # GraphQL's ID, as before; the view's UUID serialises to it.
    id: strawberry.ID


async def _my_accounts(info: Info) -> list[AccountView]:
    ctx = info.context
    return await service.my_accounts(ctx.resources.db, ctx.principal)


async def _switch_account(info: Info, account_id: strawberry.ID) -> list[AccountView]:
    ctx = info.context
    try:
        target = UUID(str(account_id))
    except ValueError as exc:
        raise BadRequest("accountId is not a valid id") from exc
    res = ctx.resources
    ctx.principal, accounts = await service.switch_and_list(
        res.db, res.redis, res.auth_cache, ctx.principal, target
    )
    return accounts


@strawberry.type
class AuthQuery:
    my_accounts: list[AccountView] = strawberry.field(
        resolver=_my_accounts,
        graphql_type=list[AccountType],
        description="The accounts you are a member of; one is active.",
    )


@strawberry.type
class AuthMutation:
    switch_account: list[AccountView] = strawberry.mutation(
        resolver=_switch_account,
        graphql_type=list[AccountType],
        description="Make another of your accounts the session's active one.",
    )
