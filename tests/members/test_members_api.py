"""Members and invitations over REST and GraphQL: the role matrix, the Owner rules, invitation
links, cross-account isolation, and cached credentials dropped at once on a change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

import httpx
import pytest

from lumio.accounts import repository as accounts_repository
from lumio.kit.permissions import RoleName
from tests.conftest import PASSWORD, Factory, Member

MANAGERS = {RoleName.OWNER, RoleName.ADMINISTRATOR}


async def graphql(api: httpx.AsyncClient, query: str, headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    response = await api.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


@dataclass
class Setup:
    account: UUID
    actor: Member
    target: Member


async def setup(factory: Factory, role: RoleName) -> Setup:
    """An account with a member of ``role`` (the actor) and a Viewer to act on."""
    account, owner = await factory.account()
    actor = owner if role is RoleName.OWNER else await factory.member(account, role)
    target = await factory.member(account, RoleName.VIEWER)
    return Setup(account, actor, target)


Rest = Callable[[httpx.AsyncClient, Setup], Awaitable[httpx.Response]]

REST: dict[str, Rest] = {
    "list members": lambda api, s: api.get("/v1/members", headers=s.actor.bearer),
    "change role": lambda api, s: api.put(
        f"/v1/members/{s.target.user_id}", json={"role": "moderator"}, headers=s.actor.bearer
    ),
    "remove member": lambda api, s: api.delete(
        f"/v1/members/{s.target.user_id}", headers=s.actor.bearer
    ),
    "invite": lambda api, s: api.post(
        "/v1/invitations",
        json={"email": "new@example.com", "role": "viewer"},
        headers=s.actor.bearer,
    ),
    "list invitations": lambda api, s: api.get("/v1/invitations", headers=s.actor.bearer),
    "add member": lambda api, s: api.post(
        "/v1/members", json={"email": "added@example.com", "role": "viewer"}, headers=s.actor.bearer
    ),
    "change role (PATCH)": lambda api, s: api.patch(
        f"/v1/members/{s.target.user_id}", json={"role": "moderator"}, headers=s.actor.bearer
    ),
}

GRAPHQL: dict[str, Callable[[Setup], str]] = {
    "members": lambda s: "{ members { userId email role } }",
    "inviteMember": lambda s: (
        'mutation { inviteMember(email: "new@example.com", role: "viewer") '
        "{ invitation { email } member { email } } }"
    ),
    "changeMemberRole": lambda s: (
        f'mutation {{ changeMemberRole(userId: "{s.target.user_id}", role: "moderator") {{ role }} }}'
    ),
    "removeMember": lambda s: f'mutation {{ removeMember(userId: "{s.target.user_id}") }}',
}


@pytest.mark.parametrize("role", list(RoleName))
@pytest.mark.parametrize("operation", list(REST))
async def test_rest_role_matrix(
    api: httpx.AsyncClient, factory: Factory, role: RoleName, operation: str
) -> None:
    s = await setup(factory, role)
    response = await REST[operation](api, s)
    if role in MANAGERS:
        assert response.status_code in {200, 201, 204}, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "FORBIDDEN"
        # Nothing changed.
        role_now = await accounts_repository.member_role(factory.db, s.account, s.target.user_id)
        assert role_now is RoleName.VIEWER


@pytest.mark.parametrize("role", list(RoleName))
@pytest.mark.parametrize("operation", list(GRAPHQL))
async def test_graphql_role_matrix(
    api: httpx.AsyncClient, factory: Factory, role: RoleName, operation: str
) -> None:
    s = await setup(factory, role)
    body = await graphql(api, GRAPHQL[operation](s), s.actor.bearer)
    if role in MANAGERS:
        assert "errors" not in body, body
        assert body["data"][operation] is not None
    else:
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


@pytest.mark.parametrize("operation", list(REST))
async def test_no_credentials(api: httpx.AsyncClient, factory: Factory, operation: str) -> None:
    s = await setup(factory, RoleName.OWNER)
    anonymous = Setup(
        s.account, Member(s.actor.user_id, s.account, "", "", "", RoleName.OWNER), s.target
    )
    response = await REST[operation](api, anonymous)
    assert response.status_code == 401


async def test_members_lists_roles(api: httpx.AsyncClient, factory: Factory) -> None:
    s = await setup(factory, RoleName.OWNER)
    listed = (await api.get("/v1/members", headers=s.actor.bearer)).json()
    assert {(m["email"], m["role"]) for m in listed} == {
        (s.actor.email, "owner"),
        (s.target.email, "viewer"),
    }


async def test_only_owners_manage_owners(api: httpx.AsyncClient, factory: Factory) -> None:
    account, owner = await factory.account()
    admin = await factory.member(account, RoleName.ADMINISTRATOR)
    other_admin = await factory.member(account, RoleName.ADMINISTRATOR)
    # An Administrator neither demotes nor removes an Owner, nor makes one, nor invites one.
    for response in [
        await api.put(
            f"/v1/members/{owner.user_id}", json={"role": "viewer"}, headers=admin.bearer
        ),
        await api.delete(f"/v1/members/{owner.user_id}", headers=admin.bearer),
        await api.put(
            f"/v1/members/{other_admin.user_id}", json={"role": "owner"}, headers=admin.bearer
        ),
        await api.post(
            "/v1/invitations",
            json={"email": "x@example.com", "role": "owner"},
            headers=admin.bearer,
        ),
    ]:
        assert response.status_code == 403, response.text
    # ...but manages everyone else, Administrators included.
    demoted = await api.put(
        f"/v1/members/{other_admin.user_id}", json={"role": "moderator"}, headers=admin.bearer
    )
    assert demoted.status_code == 200 and demoted.json()["role"] == "moderator"
    # An Owner makes another Owner.
    promoted = await api.put(
        f"/v1/members/{admin.user_id}", json={"role": "owner"}, headers=owner.bearer
    )
    assert promoted.json()["role"] == "owner"


async def test_the_last_owner_stays(api: httpx.AsyncClient, factory: Factory) -> None:
    account, owner = await factory.account()
    demote = await api.put(
        f"/v1/members/{owner.user_id}", json={"role": "administrator"}, headers=owner.bearer
    )
    assert demote.status_code == 409 and "last Owner" in demote.json()["detail"]
    remove = await api.delete(f"/v1/members/{owner.user_id}", headers=owner.bearer)
    assert remove.status_code == 409
    assert (
        await accounts_repository.member_role(factory.db, account, owner.user_id) is RoleName.OWNER
    )
    # With a second Owner, the first may step down.
    second = await factory.member(account, RoleName.OWNER)
    stepped = await api.put(
        f"/v1/members/{owner.user_id}", json={"role": "administrator"}, headers=owner.bearer
    )
    assert stepped.status_code == 200
    last = await api.delete(f"/v1/members/{second.user_id}", headers=second.bearer)
    assert last.status_code == 409


async def test_nobody_raises_their_own_role(api: httpx.AsyncClient, factory: Factory) -> None:
    account, _ = await factory.account()
    admin = await factory.member(account, RoleName.ADMINISTRATOR)
    raised = await api.put(
        f"/v1/members/{admin.user_id}", json={"role": "owner"}, headers=admin.bearer
    )
    assert raised.status_code == 403
    lowered = await api.put(
        f"/v1/members/{admin.user_id}", json={"role": "viewer"}, headers=admin.bearer
    )
    assert lowered.status_code == 200


async def test_a_change_applies_at_once(api: httpx.AsyncClient, factory: Factory) -> None:
    """The demoted member's key (cached as an Administrator's) loses its rights on the next request."""
    account, owner = await factory.account()
    admin = await factory.member(account, RoleName.ADMINISTRATOR)
    assert (await api.get("/v1/members", headers=admin.bearer)).status_code == 200
    await api.put(f"/v1/members/{admin.user_id}", json={"role": "viewer"}, headers=owner.bearer)
    assert (await api.get("/v1/members", headers=admin.bearer)).status_code == 403
    await api.delete(f"/v1/members/{admin.user_id}", headers=owner.bearer)
    assert (await api.get("/v1/me", headers=admin.bearer)).status_code == 401


async def test_invite_existing_user_and_invitation_link(
    api: httpx.AsyncClient, factory: Factory
) -> None:
    account, owner = await factory.account()
    _other_account, other_owner = await factory.account("Other")
    added = await api.post(
        "/v1/invitations",
        json={"email": other_owner.email, "role": "moderator"},
        headers=owner.bearer,
    )
    assert added.status_code == 201
    assert added.json()["member"]["role"] == "moderator" and added.json()["invitation"] is None
    again = await api.post(
        "/v1/invitations", json={"email": other_owner.email, "role": "viewer"}, headers=owner.bearer
    )
    assert again.status_code == 409

    invited = await api.post(
        "/v1/invitations",
        json={"email": "New@Example.com", "role": "moderator"},
        headers=owner.bearer,
    )
    invitation = invited.json()["invitation"]
    assert invitation["email"] == "new@example.com" and invitation["path"].startswith(
        "/#invitation="
    )
    pending = (await api.get("/v1/invitations", headers=owner.bearer)).json()
    assert [i["email"] for i in pending] == ["new@example.com"] and pending[0]["token"] is None

    accept = {"token": invitation["token"], "password": "a new password"}
    accepted = await api.post("/v1/invitations/accept", json=accept)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json() == {
        "email": "new@example.com",
        "accountId": str(account),
        "role": "moderator",
    }
    # Single use.
    assert (await api.post("/v1/invitations/accept", json=accept)).status_code == 404
    login = await api.post(
        "/v1/auth/login", json={"email": "new@example.com", "password": "a new password"}
    )
    assert login.status_code == 200 and login.json()["permissions"] == ["spotify:read"]
    assert (await api.get("/v1/invitations", headers=owner.bearer)).json() == []


async def test_expired_or_revoked_invitations_do_not_work(
    api: httpx.AsyncClient, factory: Factory
) -> None:
    _account, owner = await factory.account()
    made = await api.post(
        "/v1/invitations",
        json={"email": "late@example.com", "role": "viewer"},
        headers=owner.bearer,
    )
    token = made.json()["invitation"]["token"]
    await factory.db.execute("UPDATE invitations SET expires_at = now() - interval '1 second'")
    late = await api.post("/v1/invitations/accept", json={"token": token, "password": PASSWORD})
    assert late.status_code == 404
    made = await api.post(
        "/v1/invitations",
        json={"email": "gone@example.com", "role": "viewer"},
        headers=owner.bearer,
    )
    invitation = made.json()["invitation"]
    revoked = await api.delete(f"/v1/invitations/{invitation['id']}", headers=owner.bearer)
    assert revoked.status_code == 204
    accept = {"token": invitation["token"], "password": PASSWORD}
    assert (await api.post("/v1/invitations/accept", json=accept)).status_code == 404
    assert (await factory.db.fetchval("SELECT count(*) FROM users WHERE email LIKE '%gone%'")) == 0


async def test_bad_input_is_refused(api: httpx.AsyncClient, factory: Factory) -> None:
    s = await setup(factory, RoleName.OWNER)
    for response in [
        await api.put(
            f"/v1/members/{s.target.user_id}", json={"role": "king"}, headers=s.actor.bearer
        ),
        await api.post(
            "/v1/invitations", json={"email": "nope", "role": "viewer"}, headers=s.actor.bearer
        ),
        await api.put("/v1/members/not-a-uuid", json={"role": "viewer"}, headers=s.actor.bearer),
    ]:
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert (
        await accounts_repository.member_role(factory.db, s.account, s.target.user_id)
        is RoleName.VIEWER
    )


async def test_an_account_never_reaches_another(api: httpx.AsyncClient, factory: Factory) -> None:
    a = await setup(factory, RoleName.OWNER)
    b = await setup(factory, RoleName.OWNER)
    emails = {m["email"] for m in (await api.get("/v1/members", headers=a.actor.bearer)).json()}
    assert emails == {a.actor.email, a.target.email}
    changed = await api.put(
        f"/v1/members/{b.target.user_id}", json={"role": "administrator"}, headers=a.actor.bearer
    )
    assert changed.status_code == 404
    removed = await api.delete(f"/v1/members/{b.target.user_id}", headers=a.actor.bearer)
    assert removed.status_code == 404
    made = await api.post(
        "/v1/invitations", json={"email": "b@example.com", "role": "viewer"}, headers=b.actor.bearer
    )
    b_invitation = made.json()["invitation"]["id"]
    assert (
        await api.delete(f"/v1/invitations/{b_invitation}", headers=a.actor.bearer)
    ).status_code == 404
    assert (await api.get("/v1/invitations", headers=a.actor.bearer)).json() == []
    query = f'mutation {{ removeMember(userId: "{b.target.user_id}") }}'
    body = await graphql(api, query, a.actor.bearer)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    assert (
        await accounts_repository.member_role(factory.db, b.account, b.target.user_id)
        is RoleName.VIEWER
    )
