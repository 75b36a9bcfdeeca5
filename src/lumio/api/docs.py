"""Swagger UI at /docs, served from this app: the assets are vendored from the npm package
``swagger-ui-dist`` (swagger_ui/SOURCE.md) and checked against their pinned hashes, never loaded
from a CDN, under a CSP as strict as the dashboard's (its own scripts only, no inline script)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import Response

from lumio.kit.errors import NotFound

router = APIRouter(include_in_schema=False)

# Swagger UI sets style attributes from script and uses data: images in its stylesheet.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
INIT = b"""window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
  });
};
"""
_FILES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
}
# swagger-ui-dist 5.35.0 (swagger_ui/SOURCE.md).
PINNED = {
    "swagger-ui-bundle.js": "e6a898692f2d768e807c3ba4626068a69a2c5dd960dd6c76f3e4d3a3de180af2",
    "swagger-ui.css": "5ed08757e53da3e026d6cbecc61fe5d43585c9560b302d534ad56692519a273d",
}
VENDORED = Path(__file__).parent / "swagger_ui"


def _vendored(name: str) -> bytes:
    body = (VENDORED / name).read_bytes()
    if hashlib.sha256(body).hexdigest() != PINNED[name]:
        raise RuntimeError(f"the vendored {name} does not match its pinned hash")
    return body


@lru_cache(maxsize=1)
def assets() -> dict[str, tuple[bytes, str]]:
    found = {name: (_vendored(name), kind) for name, kind in _FILES.items()}
    found["init.js"] = (INIT, "text/javascript; charset=utf-8")
    return found


def asset_url(name: str) -> str:
    digest = hashlib.sha256(assets()[name][0]).hexdigest()[:16]
    return f"/docs/assets/{digest}/{name}"


def page() -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Lumio channel status - API</title>"
        f'<link rel="stylesheet" href="{asset_url("swagger-ui.css")}"></head>'
        '<body><div id="swagger-ui"></div>'
        f'<script src="{asset_url("swagger-ui-bundle.js")}"></script>'
        f'<script src="{asset_url("init.js")}"></script></body></html>'
    )


@router.get("/docs")
async def docs_page() -> Response:
    return Response(
        page(), headers={**HEADERS, "Cache-Control": "no-store"}, media_type="text/html"
    )


@router.get("/docs/assets/{digest}/{name}")
async def docs_asset(digest: str, name: str) -> Response:
    found = assets().get(name)
    if found is None or asset_url(name) != f"/docs/assets/{digest}/{name}":
        raise NotFound("no such asset in this release; reload the page")
    headers = {**HEADERS, "Cache-Control": "public, max-age=31536000, immutable"}
    return Response(found[0], headers=headers, media_type=found[1])
