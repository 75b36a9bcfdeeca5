"""Endpoint URLs that reach loopback, private, link-local or metadata addresses are refused at
create and at send (DNS rebinding), unless LUMIO_WEBHOOK_ALLOW_PRIVATE."""

from __future__ import annotations

import ipaddress

import asyncpg
import httpx
import pytest

from lumio.kit.settings import Settings
from lumio.webhooks import ssrf
from tests.conftest import Factory
from tests.webhooks.conftest import Receiver, drain, make_loop

REFUSED = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://10.255.3.4:8443/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://localhost/hook",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://internal.example/hook",  # resolves to 10.1.2.3 below
    "http://93.184.215.14/hook",  # public, but plain http
]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ssrf.resolve

    async def resolve(host: str, port: int) -> list[ssrf.IPAddress]:
        if host == "internal.example":
            return [ipaddress.ip_address("10.1.2.3")]
        if host == "rebind.example":
            return [ipaddress.ip_address("127.0.0.1")]
        return await real(host, port)

    monkeypatch.setattr(ssrf, "resolve", resolve)


@pytest.mark.parametrize("url", REFUSED)
async def test_refused_at_create(api: httpx.AsyncClient, factory: Factory, url: str) -> None:
    _, owner = await factory.account()
    body = {"url": url, "events": ["went_online"]}
    response = await api.post("/v1/webhooks", json=body, headers=owner.bearer)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await api.get("/v1/webhooks", headers=owner.bearer)).json() == []


@pytest.mark.parametrize("url", REFUSED)
async def test_check_refuses_without_the_setting(url: str) -> None:
    with pytest.raises(ssrf.UnsafeUrl):
        await ssrf.check(url, allow_private=False)


async def test_a_public_address_is_pinned_with_the_name_kept() -> None:
    target = await ssrf.check("https://93.184.215.14:8443/x?y=1", allow_private=False)
    assert (target.url.host, target.host, target.netloc) == (
        "93.184.215.14",
        "93.184.215.14",
        "93.184.215.14:8443",
    )


@pytest.mark.parametrize("path", ["/hook", "rebind"])
async def test_refused_at_send(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    hook_settings: Settings,
    db: asyncpg.Pool,
    path: str,
) -> None:
    # Created while private addresses were allowed (or while the name resolved publicly) ...
    _, owner = await factory.account()
    url = "https://rebind.example/hook" if path == "rebind" else receiver.url + path
    body = {"url": url, "events": ["test"]}
    hook = (await client.post("/v1/webhooks", json=body, headers=owner.bearer)).json()
    await client.post(f"/v1/webhooks/{hook['id']}/test", headers=owner.bearer)
    # ... then sent by a worker that refuses them: no request leaves.
    strict = hook_settings.updated({"webhooks": {"allow_private": False}})
    await drain(make_loop(strict, db), db, rounds=2)
    assert receiver.received == []
    (delivery,) = (
        await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=owner.bearer)
    ).json()
    assert delivery["state"] == "pending" and delivery["responseStatus"] is None
    assert "refused" in delivery["error"] or "https" in delivery["error"]
