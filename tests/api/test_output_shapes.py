"""Each output shape is declared once: the GraphQL schema is the one the clients know (a snapshot
taken before the shapes were folded; a change to the schema is a deliberate change of this file),
and every REST answer is what the OpenAPI document says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from lumio.api.graphql.schema import schema
from lumio.channel_status import repository as status_repository
from lumio.channel_status.schemas import OfflineWrite, OnlineWrite
from lumio.channels import repository as channels_repository
from lumio.platforms.base import Platform
from lumio.spotify import repository as spotify_repository
from lumio.spotify.schemas import Item, ItemKind, Play
from tests.conftest import Factory

SNAPSHOT = Path(__file__).parent / "snapshots" / "schema.graphql"


def test_the_graphql_schema_is_unchanged() -> None:
    assert schema.as_str() + "\n" == SNAPSHOT.read_text()


# --- a small validator for the parts of JSON Schema that the OpenAPI document uses -------------


def _scalar_ok(value: Any, kind: str, fmt: str | None) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind != "string" or not isinstance(value, str):
        return False
    if fmt == "date-time":
        return datetime.fromisoformat(value).tzinfo is not None
    if fmt == "uuid":
        return str(UUID(value)) == value
    return True


def _object_ok(value: Any, spec: dict[str, Any], doc: dict[str, Any]) -> bool:
    properties: dict[str, Any] = spec.get("properties", {})
    # Every declared field is sent, and nothing else.
    if not isinstance(value, dict) or set(value) != set(properties):
        return False
    return all(conforms(value[name], sub, doc) for name, sub in properties.items())


def conforms(value: Any, spec: dict[str, Any], doc: dict[str, Any]) -> bool:
    if "$ref" in spec:
        spec = doc["components"]["schemas"][spec["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in spec:
        return any(conforms(value, option, doc) for option in spec["anyOf"])
    kind = spec["type"]
    if kind == "array":
        return isinstance(value, list) and all(conforms(v, spec["items"], doc) for v in value)
    if kind == "object":
        return _object_ok(value, spec, doc)
    return _scalar_ok(value, kind, spec.get("format"))


def response_schema(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    responses = doc["paths"][path][method]["responses"]
    ok = responses.get("200") or responses["201"]
    spec: dict[str, Any] = ok["content"]["application/json"]["schema"]
    return spec


def test_the_validator_refuses_drift(app: FastAPI) -> None:
    doc = app.openapi()
    spec = response_schema(doc, "get", "/v1/spotify/manual-connect")
    assert conforms({"active": True, "remainingSeconds": 5}, spec, doc)
    assert not conforms({"active": True, "remaining_seconds": 5}, spec, doc)
    assert not conforms({"active": True}, spec, doc)
    assert not conforms({"active": True, "remainingSeconds": 5, "extra": 1}, spec, doc)
    assert not conforms({"active": "yes", "remainingSeconds": 5}, spec, doc)


# --- real answers against the document ---------------------------------------------------------


async def _some_of_everything(factory: Factory, account: UUID) -> None:
    db = factory.db
    now = datetime.now(UTC)
    started = now - timedelta(hours=1)
    online = OnlineWrite(account, Platform.TWITCH, "Hi", "Chess", 3, started, now)
    await status_repository.set_online(db, online)
    await status_repository.set_offline(db, OfflineWrite(account, Platform.KICK, now))
    await channels_repository.link(db, account, Platform.TWITCH, "123", "Streamer")
    item = Item(ItemKind.TRACK, "t1", "Song", ("A", "B"), None, None, "https://x", 1000)
    await spotify_repository.insert_plays(db, [(account, Play.of(item, now))])


GETS = [
    "/v1/channel-status",
    "/v1/channels",
    "/v1/me",
    "/v1/me/accounts",
    "/v1/api-keys",
    "/v1/spotify/manual-connect",
    "/v1/spotify/connection",
    "/v1/spotify/history",
    "/v1/spotify/now-playing",
]


@pytest.mark.parametrize("path", GETS)
async def test_answers_match_the_openapi_document(
    api: httpx.AsyncClient, app: FastAPI, factory: Factory, path: str
) -> None:
    account, owner = await factory.account()
    await _some_of_everything(factory, account)
    await api.post("/v1/spotify/manual-connect", headers=owner.bearer)
    answer = await api.get(path, headers=owner.bearer)
    assert answer.status_code == 200, answer.text
    doc = app.openapi()
    assert conforms(answer.json(), response_schema(doc, "get", path), doc), answer.text


async def test_the_fast_channel_status_route_fills_every_field(
    api: httpx.AsyncClient, app: FastAPI, factory: Factory
) -> None:
    account, owner = await factory.account()
    await _some_of_everything(factory, account)
    rows = (await api.get("/v1/channel-status", headers=owner.bearer)).json()
    assert [row["platform"] for row in rows] == ["kick", "twitch"]
    twitch = rows[1]
    assert (twitch["isOnline"], twitch["streamTitle"], twitch["category"]) == (True, "Hi", "Chess")
    assert twitch["viewerCount"] == 3 and twitch["startedAt"] is not None
