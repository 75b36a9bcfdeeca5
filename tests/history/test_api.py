"""/v1/streams, /v1/broadcasts and the GraphQL history fields: roles, isolation, pages, input."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import httpx
import pytest

from lumio.kit.permissions import RoleName
from tests.conftest import Factory, Member
from tests.history.seed import seed_session

T0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)

READS = [
    "/v1/streams",
    "/v1/streams.csv",
    "/v1/streams/stats",
    "/v1/broadcasts",
    "/v1/streams/{id}",
]
GRAPHQL = [
    "{ streamSessions(first: 5) { edges { cursor node { id } } pageInfo { hasNextPage } } }",
    '{ streamSession(id: "{id}") { session { id } } }',
    "{ broadcasts(first: 5) { edges { node { id platforms } } } }",
    "{ streamStats { streams hoursLive } }",
]


async def graphql(api: httpx.AsyncClient, member: Member, query: str) -> dict[str, object]:
    response = await api.post("/graphql", json={"query": query}, headers=member.bearer)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("role", list(RoleName))
async def test_role_matrix(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory, role: RoleName
) -> None:
    account, _ = await factory.account()
    session_id = await seed_session(db, account, "kick", T0, [1, 2, 3])
    member = await factory.member(account, role)
    allowed = role is not RoleName.VIEWER
    for path in READS:
        url = path.format(id=session_id)
        response = await api.get(url, headers=member.bearer)
        assert response.status_code == (200 if allowed else 403), (url, response.text)
        if not allowed:
            assert response.headers["content-type"] == "application/problem+json"
        assert (await api.get(url)).status_code == 401
    for query in GRAPHQL:
        body = await graphql(api, member, query.replace("{id}", str(session_id)))
        if allowed:
            assert "errors" not in body, body
        else:
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"  # type: ignore[index]


async def test_another_accounts_sessions_are_not_found(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory
) -> None:
    mine, me = await factory.account()
    theirs, _ = await factory.account()
    await seed_session(db, mine, "twitch", T0, [5])
    foreign = await seed_session(db, theirs, "twitch", T0 + timedelta(hours=1), [9])
    response = await api.get(f"/v1/streams/{foreign}", headers=me.bearer)
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert (await api.get(f"/v1/streams/{uuid4()}", headers=me.bearer)).status_code == 404
    assert (await api.get("/v1/streams/not-a-uuid", headers=me.bearer)).status_code == 404
    listed = (await api.get("/v1/streams", headers=me.bearer)).json()["items"]
    assert [s["peakViewers"] for s in listed] == [5]
    broadcasts = (await api.get("/v1/broadcasts", headers=me.bearer)).json()["items"]
    assert len(broadcasts) == 1
    body = await graphql(api, me, f'{{ streamSession(id: "{foreign}") {{ session {{ id }} }} }}')
    assert body["data"] == {"streamSession": None}
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"  # type: ignore[index]


async def test_pages_are_stable_while_sessions_arrive(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory
) -> None:
    account, owner = await factory.account()
    expected = []
    for n in range(25):
        expected.append(await seed_session(db, account, "kick", T0 + timedelta(hours=n), [n]))
    expected.reverse()
    seen, cursor = [], None
    for n in range(10):
        params = {"limit": "10", **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/streams", params=params, headers=owner.bearer)).json()
        seen += [item["id"] for item in page["items"]]
        # A new stream starts (and an older one is back-filled) between two pages.
        await seed_session(db, account, "kick", T0 + timedelta(days=5, hours=n), [1])
        if (cursor := page["nextCursor"]) is None:
            break
    assert seen == [str(s) for s in expected]

    # The GraphQL connection pages the same way.
    query = '{ streamSessions(first: 3, platform: "kick") { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }'
    body = await graphql(api, owner, query)
    connection = body["data"]["streamSessions"]  # type: ignore[index]
    assert connection["pageInfo"]["hasNextPage"] is True
    after = connection["pageInfo"]["endCursor"]
    follow = query.replace("first: 3", f'first: 3, after: "{after}"')
    body = await graphql(api, owner, follow)
    ids = [e["node"]["id"] for e in body["data"]["streamSessions"]["edges"]]  # type: ignore[index]
    first_ids = [e["node"]["id"] for e in connection["edges"]]
    assert not set(ids) & set(first_ids) and len(ids) == 3


@pytest.mark.parametrize(
    "path",
    [
        "/v1/streams?cursor=nonsense",
        "/v1/streams?cursor=" + "A" * 40,
        "/v1/streams?limit=0",
        "/v1/streams?limit=101",
        "/v1/streams?from=yesterday",
        "/v1/streams?from=2026-11-20T00:00:00Z&to=2026-11-19T00:00:00Z",
        "/v1/streams?platform=tiktok",
        "/v1/streams/stats?from=2026-13-01",
        "/v1/streams/stats?from=2026-11-20T00:00:00Z&to=2026-11-20T00:00:00Z",
        "/v1/streams.csv?to=soon",
        "/v1/broadcasts?cursor=%25%25",
        "/v1/streams/{id}?resolution=10s",
    ],
)
async def test_bad_input_is_a_400_problem(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory, path: str
) -> None:
    account, owner = await factory.account()
    session_id = await seed_session(db, account, "kick", T0, [1])
    response = await api.get(path.format(id=session_id), headers=owner.bearer)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "BAD_REQUEST"


async def test_bad_graphql_cursor(api: httpx.AsyncClient, factory: Factory) -> None:
    _, owner = await factory.account()
    body = await graphql(api, owner, '{ streamSessions(after: "x") { edges { cursor } } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"  # type: ignore[index]


async def test_a_session_with_its_curve_segments_and_tracks(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory
) -> None:
    account, owner = await factory.account()
    viewers = [10 + n % 7 for n in range(1440)]
    session_id = await seed_session(db, account, "twitch", T0, viewers)
    await db.execute(
        "INSERT INTO stream_segments (session_id, started_at, title, category)"
        " VALUES ($1, $2, 'Part two', 'Games')",
        session_id,
        T0 + timedelta(hours=3),
    )
    await db.execute(
        "INSERT INTO spotify_plays (account_id, kind, title, artists, started_at) VALUES"
        " ($1, 'track', 'Inside', '{A}', $2), ($1, 'track', 'Before', '{B}', $3)",
        account,
        T0 + timedelta(hours=1),
        T0 - timedelta(hours=1),
    )
    raw = (await api.get(f"/v1/streams/{session_id}", headers=owner.bearer)).json()
    assert raw["session"]["durationSeconds"] == 1439 * 30
    assert raw["viewers"]["resolution"] == "raw" and raw["viewers"]["viewers"] == viewers
    assert raw["viewers"]["t"][0] == int(T0.timestamp()) and raw["viewers"]["min"] is None
    assert [s["title"] for s in raw["segments"]] == ["A stream", "Part two"]
    assert raw["segments"][0]["endedAt"] == raw["segments"][1]["startedAt"]
    assert [t["title"] for t in raw["tracks"]] == ["Inside"]
    five = (await api.get(f"/v1/streams/{session_id}?resolution=5m", headers=owner.bearer)).json()[
        "viewers"
    ]
    assert len(five["t"]) == 144 and five["min"][0] == 10 and five["max"][0] == 16
    minute = (
        await api.get(f"/v1/streams/{session_id}?resolution=1m", headers=owner.bearer)
    ).json()["viewers"]
    assert len(minute["t"]) == 720


async def test_a_simulcast_is_one_broadcast(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory
) -> None:
    account, owner = await factory.account()
    twitch = await seed_session(
        db, account, "twitch", T0, [100, 200, 150], every=timedelta(minutes=1)
    )
    youtube = await seed_session(
        db, account, "youtube", T0 + timedelta(minutes=1), [50, 80], every=timedelta(minutes=1)
    )
    alone = await seed_session(db, account, "kick", T0 + timedelta(hours=5), [7])
    page = (await api.get("/v1/broadcasts", headers=owner.bearer)).json()
    latest, simulcast = page["items"]
    assert latest["id"] == str(alone) and latest["platforms"] == ["kick"]
    assert simulcast["id"] == str(twitch)
    assert simulcast["platforms"] == ["twitch", "youtube"]
    assert {s["id"] for s in simulcast["sessions"]} == {str(twitch), str(youtube)}
    # Minute 1: 200 + 50; minute 2: 150 + 80.
    assert simulcast["peakViewers"] == 250
    one = (await api.get("/v1/broadcasts?limit=1", headers=owner.bearer)).json()
    rest = (
        await api.get(f"/v1/broadcasts?limit=1&cursor={one['nextCursor']}", headers=owner.bearer)
    ).json()
    assert [b["id"] for b in one["items"] + rest["items"]] == [str(alone), str(twitch)]
    assert rest["nextCursor"] is None


async def test_stats_and_csv(api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory) -> None:
    account, owner = await factory.account()
    # Two hours on Twitch (121 samples a minute apart), one on Kick.
    await seed_session(db, account, "twitch", T0, [10] * 60 + [40] * 61, every=timedelta(minutes=1))
    await seed_session(
        db, account, "kick", T0 + timedelta(days=1), [5] * 61, every=timedelta(minutes=1),
        title="=cmd()",
    )  # fmt: skip
    await seed_session(db, account, "kick", T0 - timedelta(days=60), [999])
    window = "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z"
    stats = (await api.get(f"/v1/streams/stats?{window}", headers=owner.bearer)).json()
    assert stats["streams"] == 2 and stats["hoursLive"] == pytest.approx(3.0)
    assert stats["peakViewers"] == 40
    by_platform = {p["platform"]: p for p in stats["platforms"]}
    assert by_platform["twitch"]["averageViewers"] == pytest.approx((600 + 40 * 61) / 121)
    assert by_platform["kick"]["hoursLive"] == pytest.approx(1.0)
    response = await api.get(f"/v1/streams.csv?{window}", headers=owner.bearer)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["platform"] for r in rows] == ["kick", "twitch"]
    assert rows[0]["title"] == "'=cmd()" and rows[1]["peak_viewers"] == "40"
