"""Managing webhook endpoints over REST and GraphQL: shapes, validation, roles, isolation."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx
import pytest

from lumio.kit.permissions import RoleName
from tests.conftest import Factory, Member
from tests.webhooks.conftest import Receiver

ALLOWED = {RoleName.OWNER, RoleName.ADMINISTRATOR}


async def create(client: httpx.AsyncClient, member: Member, url: str, **extra: object) -> dict:  # type: ignore[type-arg]
    body = {"url": url, "events": ["went_online", "went_offline"], **extra}
    response = await client.post("/v1/webhooks", json=body, headers=member.bearer)
    assert response.status_code == 201, response.text
    created: dict = response.json()  # type: ignore[type-arg]
    return created


async def graphql(client: httpx.AsyncClient, member: Member, query: str) -> dict:  # type: ignore[type-arg]
    response = await client.post("/graphql", json={"query": query}, headers=member.bearer)
    result: dict = response.json()  # type: ignore[type-arg]
    return result


async def test_create_list_edit_rotate_delete(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver
) -> None:
    _, owner = await factory.account()
    created = await create(client, owner, receiver.url + "/hook", description="mine")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert created["kind"] == "standard" and created["enabled"] is True
    assert created["events"] == ["went_offline", "went_online"]

    listed = (await client.get("/v1/webhooks", headers=owner.bearer)).json()
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0]

    path = f"/v1/webhooks/{created['id']}"
    edited = await client.patch(
        path, json={"description": "renamed", "enabled": False}, headers=owner.bearer
    )
    assert edited.status_code == 200
    assert edited.json()["description"] == "renamed" and edited.json()["enabled"] is False

    rotated = await client.post(path + "/rotate-secret", headers=owner.bearer)
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != secret
    assert rotated.json()["previousSecretUntil"] is not None

    test = await client.post(path + "/test", headers=owner.bearer)
    assert test.status_code == 202 and test.json()["eventType"] == "test"
    deliveries = (await client.get(path + "/deliveries", headers=owner.bearer)).json()
    assert [d["id"] for d in deliveries] == [test.json()["id"]]

    assert (await client.delete(path, headers=owner.bearer)).status_code == 204
    assert (await client.get("/v1/webhooks", headers=owner.bearer)).json() == []
    assert (await client.delete(path, headers=owner.bearer)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://x.test/hook", "events": ["went_online"], "kind": "slack"},
        {"url": "http://x.test/hook", "events": ["gone_fishing"]},
        {"url": "http://x.test/hook", "events": []},
        {"url": "not a url", "events": ["went_online"]},
        {"url": "ftp://x.test/hook", "events": ["went_online"]},
        {"events": ["went_online"]},
        {"url": "http://x.test/hook", "events": ["went_online"], "extra": 1},
    ],
)
async def test_bad_input_is_a_4xx_problem_and_changes_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    body: dict,  # type: ignore[type-arg]
) -> None:
    _, owner = await factory.account()
    response = await client.post("/v1/webhooks", json=body, headers=owner.bearer)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/webhooks", headers=owner.bearer)).json() == []


@dataclass(frozen=True)
class Op:
    name: str
    method: str
    path: str
    graphql: str


OPS = [
    Op("webhooks", "GET", "/v1/webhooks", "{ webhooks { id } }"),
    Op(
        "createWebhook",
        "POST",
        "/v1/webhooks",
        'mutation { createWebhook(url: "{url}", events: ["test"]) { id secret } }',
    ),
    Op(
        "updateWebhook",
        "PATCH",
        "/v1/webhooks/{id}",
        'mutation { updateWebhook(id: "{id}", description: "x") { id } }',
    ),
    Op(
        "rotateWebhookSecret",
        "POST",
        "/v1/webhooks/{id}/rotate-secret",
        'mutation { rotateWebhookSecret(id: "{id}") { secret } }',
    ),
    Op(
        "testWebhook",
        "POST",
        "/v1/webhooks/{id}/test",
        'mutation { testWebhook(id: "{id}") { id } }',
    ),
    Op(
        "webhookDeliveries",
        "GET",
        "/v1/webhooks/{id}/deliveries",
        '{ webhookDeliveries(id: "{id}") { id state } }',
    ),
    Op(
        "redeliver",
        "POST",
        "/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
        "",
    ),
    # GraphQL deletes the second webhook: REST has deleted the first.
    Op("deleteWebhook", "DELETE", "/v1/webhooks/{id}", 'mutation { deleteWebhook(id: "{id2}") }'),
]


async def _world(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver, role: RoleName
) -> tuple[Member, dict[str, str]]:
    account, owner = await factory.account()
    member = owner if role is RoleName.OWNER else await factory.member(account, role)
    hook = await create(client, owner, receiver.url + "/hook")
    second = await create(client, owner, receiver.url + "/hook2")
    path = f"/v1/webhooks/{hook['id']}/test"
    delivery = (await client.post(path, headers=owner.bearer)).json()
    values = {"id": hook["id"], "id2": second["id"], "delivery": delivery["id"]}
    return member, values | {"url": receiver.url + "/h"}


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


async def _check(
    client: httpx.AsyncClient, member: Member, op: Op, values: dict[str, str], allowed: bool
) -> None:
    body = {"url": values["url"], "events": ["test"]} if op.name == "createWebhook" else None
    body = {"description": "x"} if op.name == "updateWebhook" else body
    response = await client.request(
        op.method, _fill(op.path, values), json=body, headers=member.bearer
    )
    if allowed:
        assert response.status_code < 300, (op.name, response.text)
    else:
        assert response.status_code == 403, op.name
        assert response.headers["content-type"] == "application/problem+json"
    if op.graphql:
        answer = await graphql(client, member, _fill(op.graphql, values))
        if allowed:
            assert "errors" not in answer, answer
        else:
            assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN", answer


@pytest.mark.parametrize("role", list(RoleName))
async def test_role_matrix(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver, role: RoleName
) -> None:
    # Every operation, in an order that keeps the webhooks until the deletes at the end.
    member, values = await _world(client, factory, receiver, role)
    for op in OPS:
        await _check(client, member, op, values, role in ALLOWED)


@pytest.mark.parametrize("op", [o for o in OPS if "{id}" in o.path], ids=lambda o: o.name)
async def test_another_accounts_webhook_is_not_found(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver, op: Op
) -> None:
    _, values = await _world(client, factory, receiver, RoleName.OWNER)
    _, stranger = await factory.account("Other")
    body = {"description": "x"} if op.name == "updateWebhook" else None
    response = await client.request(
        op.method, _fill(op.path, values), json=body, headers=stranger.bearer
    )
    assert response.status_code == 404, response.text
    if op.graphql:
        answer = await graphql(client, stranger, _fill(op.graphql.replace("id2", "id"), values))
        assert answer["errors"][0]["extensions"]["code"] == "NOT_FOUND", answer
    assert (await client.get("/v1/webhooks", headers=stranger.bearer)).json() == []


@pytest.mark.parametrize(
    "mutation",
    [
        'updateWebhook(id: "{id}", url: "") { id }',
        'updateWebhook(id: "{id}", events: []) { id }',
        'createWebhook(url: "{url}", events: ["test"], description: "{long}") { id }',
    ],
)
async def test_graphql_input_its_model_refuses_is_a_bad_request(
    client: httpx.AsyncClient, factory: Factory, receiver: Receiver, mutation: str
) -> None:
    """Found by the fuzzer: arguments the input model refuses were an INTERNAL error."""
    _, owner = await factory.account()
    created = await create(client, owner, receiver.url + "/hook", description="kept")
    filled = mutation.replace("{id}", created["id"]).replace("{url}", receiver.url + "/other")
    answer = await graphql(
        client, owner, "mutation { " + filled.replace("{long}", "d" * 501) + " }"
    )
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST", answer
    assert error["message"].startswith("invalid input: "), answer
    listed = (await client.get("/v1/webhooks", headers=owner.bearer)).json()
    assert [(w["id"], w["url"], w["description"]) for w in listed] == [
        (created["id"], created["url"], "kept")
    ]
