"""The account operations of the dashboard: every key of the account (Owners), changing the
password, one's own sessions, creating an account — the role matrix and account isolation."""

from __future__ import annotations

import httpx
import pytest

from lumio.kit.permissions import RoleName
from tests.auth.test_sessions import sign_in
from tests.conftest import Factory, Member


async def member_with(factory: Factory, role: RoleName) -> tuple[Member, Member]:
    """(a member of ``role``, another member of the same account whose key is at stake)."""
    account, owner = await factory.account()
    member = owner if role is RoleName.OWNER else await factory.member(account, role)
    return member, await factory.member(account, RoleName.VIEWER)


async def works(api: httpx.AsyncClient, member: Member) -> bool:
    return (await api.get("/v1/me", headers=member.bearer)).status_code == 200


@pytest.mark.parametrize("role", list(RoleName))
async def test_every_key_of_the_account_only_for_owners(
    api: httpx.AsyncClient, factory: Factory, role: RoleName
) -> None:
    member, other = await member_with(factory, role)
    listed = await api.get("/v1/api-keys?scope=account", headers=member.bearer)
    other_key = (await api.get("/v1/api-keys", headers=other.bearer)).json()[0]
    revoked = await api.delete(
        f"/v1/api-keys/{other_key['id']}?scope=account", headers=member.bearer
    )
    if role is RoleName.OWNER:
        assert listed.status_code == 200
        assert {k["userEmail"] for k in listed.json()} == {member.email, other.email}
        assert revoked.status_code == 204
        assert not await works(api, other)
    else:
        assert listed.status_code == 403 and listed.json()["code"] == "FORBIDDEN"
        assert revoked.status_code == 403
        assert await works(api, other)
    # The own-keys view is unchanged: one's own keys, no userEmail.
    own = (await api.get("/v1/api-keys", headers=member.bearer)).json()
    assert len(own) == 1 and "userEmail" not in own[0]


async def test_an_owner_never_reaches_another_accounts_keys(
    api: httpx.AsyncClient, factory: Factory
) -> None:
    _, owner_a = await factory.account("A")
    _, owner_b = await factory.account("B")
    keys_a = (await api.get("/v1/api-keys?scope=account", headers=owner_a.bearer)).json()
    assert {k["userEmail"] for k in keys_a} == {owner_a.email}
    key_b = (await api.get("/v1/api-keys", headers=owner_b.bearer)).json()[0]
    refused = await api.delete(f"/v1/api-keys/{key_b['id']}?scope=account", headers=owner_a.bearer)
    assert refused.status_code == 404
    assert await works(api, owner_b)
    bad = await api.get("/v1/api-keys?scope=everyone", headers=owner_a.bearer)
    assert 400 <= bad.status_code < 500


@pytest.mark.parametrize("role", list(RoleName))
async def test_change_password_ends_the_other_sessions(
    api: httpx.AsyncClient, factory: Factory, role: RoleName
) -> None:
    member, _ = await member_with(factory, role)
    here = await sign_in(api, member.email, member.password)
    there = await sign_in(api, member.email, member.password)
    wrong = await api.put(
        "/v1/me/password",
        json={"currentPassword": "nope", "newPassword": "a new password"},
        headers=here.write,
    )
    assert wrong.status_code == 403
    assert (await api.get("/v1/me", headers=there.cookie)).status_code == 200
    short = await api.put(
        "/v1/me/password",
        json={"currentPassword": member.password, "newPassword": "short"},
        headers=here.write,
    )
    assert short.status_code == 400
    changed = await api.put(
        "/v1/me/password",
        json={"currentPassword": member.password, "newPassword": "a new password"},
        headers=here.write,
    )
    assert changed.status_code == 204
    assert (await api.get("/v1/me", headers=there.cookie)).status_code == 401
    assert (await api.get("/v1/me", headers=here.cookie)).status_code == 200
    old = await api.post(
        "/v1/auth/login", json={"email": member.email, "password": member.password}
    )
    assert old.status_code == 401
    # An API key cannot change the password.
    by_key = await api.put(
        "/v1/me/password",
        json={"currentPassword": "a new password", "newPassword": "another one"},
        headers=member.bearer,
    )
    assert by_key.status_code == 400


async def test_sessions_are_ones_own(api: httpx.AsyncClient, factory: Factory) -> None:
    _, a = await factory.account("A")
    _, b = await factory.account("B")
    a1 = await sign_in(api, a.email, a.password)
    a2 = await sign_in(api, a.email, a.password)
    b1 = await sign_in(api, b.email, b.password)
    listed = (await api.get("/v1/me/sessions", headers=a1.cookie)).json()
    assert len(listed) == 2 and [s["current"] for s in listed].count(True) == 1
    b_session = (await api.get("/v1/me/sessions", headers=b1.cookie)).json()[0]["id"]
    refused = await api.delete(f"/v1/me/sessions/{b_session}", headers=a1.write)
    assert refused.status_code == 404
    assert (await api.get("/v1/me", headers=b1.cookie)).status_code == 200
    other = next(s["id"] for s in listed if not s["current"])
    assert (await api.delete(f"/v1/me/sessions/{other}", headers=a1.write)).status_code == 204
    assert (await api.get("/v1/me", headers=a2.cookie)).status_code == 401


@pytest.mark.parametrize("role", list(RoleName))
async def test_anyone_signed_in_creates_an_account_and_owns_it(
    api: httpx.AsyncClient, factory: Factory, role: RoleName
) -> None:
    member, _ = await member_with(factory, role)
    session = await sign_in(api, member.email, member.password)
    created = await api.post("/v1/accounts", json={"name": " Side project "}, headers=session.write)
    assert created.status_code == 201
    assert created.json()["name"] == "Side project" and created.json()["role"] == "owner"
    accounts = (await api.get("/v1/me/accounts", headers=session.cookie)).json()
    assert {a["name"]: a["role"] for a in accounts}["Side project"] == "owner"
    assert (
        await api.post("/v1/accounts", json={"name": "x"}, headers=member.bearer)
    ).status_code == 400
    assert (
        await api.post("/v1/accounts", json={"name": ""}, headers=session.write)
    ).status_code in {400, 422}
    assert (await api.post("/v1/accounts", json={"name": "x"})).status_code == 401
