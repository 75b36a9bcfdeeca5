"""/docs: Swagger UI from the app itself under a strict CSP (issue 10, item 6)."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from tests.apiserver import ApiProcess


async def test_docs_load_only_from_our_origin(dashboard_server: ApiProcess, page: Page) -> None:
    origins: set[str] = set()
    page.on("request", lambda request: origins.add(request.url.split("/")[2]))
    await page.goto(f"{dashboard_server.base_url}/docs")
    await expect(
        page.locator("#swagger-ui").get_by_text("/v1/channel-status").first
    ).to_be_visible()
    assert origins == {dashboard_server.base_url.split("/")[2]}


async def test_docs_headers(dashboard_server: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=dashboard_server.base_url) as client:
        answer = await client.get("/docs")
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy
        assert "cdn" not in answer.text
        assets = [p for p in answer.text.split('"') if p.startswith("/docs/assets/")]
        assert len(assets) == 3
        for asset in assets:
            served = await client.get(asset)
            assert served.status_code == 200
            assert "immutable" in served.headers["cache-control"]
        assert (await client.get("/docs/assets/0000/swagger-ui.css")).status_code == 404
