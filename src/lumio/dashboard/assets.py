"""The dashboard's files: each asset's URL carries a hash of its content, so it is cached forever
and a new release is fetched at once; the page itself names the current URLs and is never cached.

Scripts and stylesheets name each other the same way (``import … from "{{asset:core.js}}"``):
an asset's hash covers the URLs it names, so changing a view module changes the URL of every
module that imports it, up to the page.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGE = "index.html"
_REFERENCE = re.compile(r"\{\{asset:([\w./-]+)\}\}")


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


_TEXT = (".js", ".css")


def make_bundle(files: dict[str, bytes]) -> Bundle:
    """The page with ``{{asset:NAME}}`` replaced by each asset's hashed URL (in scripts and
    stylesheets too; a reference cycle is an error)."""
    assets: dict[str, Asset] = {}

    def build(name: str, seen: tuple[str, ...]) -> Asset:
        if name in seen:
            raise ValueError(f"asset reference cycle: {' -> '.join((*seen, name))}")
        if name not in assets:
            body = files[name]
            if name.endswith(_TEXT):
                text = body.decode()
                body = _REFERENCE.sub(lambda m: build(m.group(1), (*seen, name)).url, text).encode()
            digest = hashlib.sha256(body).hexdigest()[:16]
            assets[name] = Asset(name, body, content_type_of(name) or "", digest)
        return assets[name]

    for name in files:
        if content_type_of(name) is not None:
            build(name, ())
    page = _REFERENCE.sub(lambda m: assets[m.group(1)].url, files[PAGE].decode())
    return Bundle(page.encode(), assets)


def _read(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if entry.is_file():
            files[prefix + entry.name] = entry.read_bytes()
        elif entry.is_dir() and not entry.name.startswith((".", "_")):
            files |= _read(entry, f"{prefix}{entry.name}/")
    return files


@functools.cache
def bundle() -> Bundle:
    """The packaged files (with the view modules under views/), read once per process."""
    return make_bundle(_read(resources.files("lumio.dashboard") / "static"))
