"""The dashboard's files: each asset's URL carries a hash of its content, so it is cached forever
and a new release is fetched at once; the page itself names the current URLs and is never cached.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGE = "index.html"
_REFERENCE = re.compile(r"\{\{asset:([\w.-]+)\}\}")


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    body: bytes
    content_type: str
    digest: str

    @property
    def url(self) -> str:
        return f"/assets/{self.digest}/{self.name}"


@dataclass(frozen=True, slots=True)
class Bundle:
    page: bytes
    assets: dict[str, Asset]

    def find(self, digest: str, name: str) -> Asset | None:
        asset = self.assets.get(name)
        return asset if asset is not None and asset.digest == digest else None


def content_type_of(name: str) -> str | None:
    return next((t for suffix, t in CONTENT_TYPES.items() if name.endswith(suffix)), None)


def make_bundle(files: dict[str, bytes]) -> Bundle:
    """The page with ``{{asset:NAME}}`` replaced by each asset's hashed URL."""
    assets: dict[str, Asset] = {}
    for name, body in files.items():
        content_type = content_type_of(name)
        if content_type is not None:
            digest = hashlib.sha256(body).hexdigest()[:16]
            assets[name] = Asset(name, body, content_type, digest)

    def url(match: re.Match[str]) -> str:
        return assets[match.group(1)].url

    page = _REFERENCE.sub(url, files[PAGE].decode())
    return Bundle(page.encode(), assets)


@functools.cache
def bundle() -> Bundle:
    """The packaged files, read once per process at the first request."""
    folder = resources.files("lumio.dashboard") / "static"
    files = {entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.is_file()}
    return make_bundle(files)
