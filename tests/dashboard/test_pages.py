"""The dashboard's page and assets over HTTP: caching, the security headers, no inline code."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from lumio.dashboard.assets import bundle, make_bundle
from lumio.kit.permissions import RoleName
from tests.conftest import Factory


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.found


async def test_page_is_not_cached_and_locked_down(api: httpx.AsyncClient) -> None:
    page = await api.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_no_inline_code_and_no_other_origin(api: httpx.AsyncClient) -> None:
    html = (await api.get("/")).text
    tags = tags_of(html)
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)
    assert not [tag for tag, _ in tags if tag == "style"]
    assert not [attrs for _, attrs in tags if "style" in attrs]
    assert not [name for _, attrs in tags for name in attrs if name.startswith("on")]
    urls = [v for _, attrs in tags for k, v in attrs.items() if k in {"src", "href"} and v]
    assert all(u.startswith(("/", "#")) and not u.startswith("//") for u in urls), urls
    assert "{{" not in html


async def test_assets_are_hashed_and_immutable(api: httpx.AsyncClient) -> None:
    html = (await api.get("/")).text
    urls = re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)
    assert {u.rsplit("/", 1)[1] for u in urls} == {
        "dashboard.js",
        "notifications.js",
        "dashboard.css",
        "icon.svg",
        "history.js",
        "history.css",
        "uPlot.iife.min.js",
        "uPlot.min.css",
    }
    for url in urls:
        _, _, digest, name = url.split("/")
        asset = await api.get(url)
        assert asset.status_code == 200
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.content == bundle().assets[name].body
        assert "content-security-policy" in asset.headers
        stale = await api.get(f"/assets/{'0' * len(digest)}/{name}")
        assert stale.status_code == 404
    assert (await api.get("/assets/x/../../pyproject.toml")).status_code == 404


def test_a_changed_file_gets_a_new_url() -> None:
    page = b'<script src="{{asset:a.js}}"></script>'
    one = make_bundle({"index.html": page, "a.js": b"1"})
    two = make_bundle({"index.html": page, "a.js": b"2"})
    assert one.assets["a.js"].url != two.assets["a.js"].url
    assert one.page == f'<script src="{one.assets["a.js"].url}"></script>'.encode()


async def test_me_lists_the_permissions_the_page_offers(
    api: httpx.AsyncClient, factory: Factory
) -> None:
    account, owner = await factory.account()
    moderator = await factory.member(account, RoleName.MODERATOR)
    assert (await api.get("/v1/me", headers=owner.bearer)).json()["permissions"] == [
        "channels:manage",
        "members:manage",
        "spotify:read",
        "spotify:worker",
        "webhooks:manage",
    ]
    assert (await api.get("/v1/me", headers=moderator.bearer)).json()["permissions"] == [
        "spotify:read"
    ]


def test_modules_name_each_other_by_hashed_url() -> None:
    page = b'<script type="module" src="{{asset:main.js}}"></script>'
    files = {"index.html": page, "main.js": b'import "{{asset:views/a.js}}";', "views/a.js": b"1"}
    one = make_bundle(files)
    two = make_bundle(files | {"views/a.js": b"2"})
    assert one.assets["main.js"].body == f'import "{one.assets["views/a.js"].url}";'.encode()
    # A changed view changes the URL of the module that imports it, and so the page.
    assert one.assets["main.js"].url != two.assets["main.js"].url and one.page != two.page


async def test_view_modules_are_served(api: httpx.AsyncClient) -> None:
    for name in ["core.js", "views/members.js", "views/keys.js", "views/account.js"]:
        asset = bundle().assets[name]
        served = await api.get(asset.url)
        assert served.status_code == 200 and served.content == asset.body
        assert b"{{" not in served.content
