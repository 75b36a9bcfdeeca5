from __future__ import annotations

import httpx

from tests.conftest import Factory


async def test_owner_reads_channel_status(api: httpx.AsyncClient, factory: Factory) -> None:
    _, owner = await factory.account()
    response = await api.get("/v1/channel-status", headers=owner.bearer)
    assert response.status_code == 200
    assert response.json() == []
