"""The dashboard page at / and its assets at /assets/{digest}/{name}."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from lumio.dashboard.assets import bundle
from lumio.kit.errors import NotFound

router = APIRouter()

# The page loads only its own files and talks only to its own origin: no inline script or
# style, no framing, nothing sent to another site.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
IMMUTABLE = "public, max-age=31536000, immutable"


@router.get("/")
async def dashboard_page() -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return Response(bundle().page, headers=headers, media_type="text/html")


@router.get("/assets/{digest}/{name:path}")
async def dashboard_asset(digest: str, name: str) -> Response:
    asset = bundle().find(digest, name)
    if asset is None:
        raise NotFound("no such asset in this release; reload the page")
    headers = {**SECURITY_HEADERS, "Cache-Control": IMMUTABLE}
    return Response(asset.body, headers=headers, media_type=asset.content_type)
