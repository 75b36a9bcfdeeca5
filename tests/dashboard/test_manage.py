"""The dashboard runs the whole job: linking channels (against the fake Kick, polled by a real
`lumio worker`), stale cards, members and invitations, API keys, the account, throttled sign-in.
Each view is checked with axe-core (WCAG level A) and its screenshot kept."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

pytest.importorskip("playwright.async_api", reason="the browser tests need playwright")

from playwright.async_api import Browser, Page, Route, expect
from redis.asyncio import Redis

from lumio.accounts import repository as accounts_repository
from lumio.channels import repository as channels
from lumio.dev.fakes.kick import FakeKickState
from lumio.dev.fakes.kick import create_app as kick_app
from lumio.dev.fakes.server import FakeServer
from lumio.kit.permissions import RoleName
from lumio.platforms.base import Platform
from tests.apiserver import LUMIO, ApiProcess
from tests.conftest import Factory, Member
from tests.dashboard.conftest import SCREENSHOTS, screenshot_path
from tests.dashboard.flows import card, go_live, link, sign_in
from tests.dashboard.test_accessibility import axe_violations

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

POLL_SECONDS = 1


@pytest.fixture(scope="module")
def kick() -> Iterator[tuple[FakeKickState, str]]:
    state = FakeKickState()
    with FakeServer(kick_app(state)) as url:
        yield state, url


@pytest.fixture(scope="module")
def kick_env(kick: tuple[FakeKickState, str]) -> dict[str, str]:
    state, url = kick
    return {
        "LUMIO_KICK_CLIENT_ID": state.client_id,
        "LUMIO_KICK_CLIENT_SECRET": state.client_secret,
        "LUMIO_KICK_API_BASE": url,
        "LUMIO_KICK_ID_BASE": url,
        "LUMIO_POLL_OFFLINE_SECONDS": str(POLL_SECONDS),
        "LUMIO_POLL_LIVE_SECONDS": str(POLL_SECONDS),
        "LUMIO_POLL_SETTLING_SECONDS": str(POLL_SECONDS),
        "LUMIO_POLL_BATCH_WAIT_SECONDS": "0",
    }


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str, kick_env: dict[str, str]) -> Iterator[ApiProcess]:
    """`lumio api` and `lumio worker`, both knowing the fake Kick."""
    log = SCREENSHOTS / "manage-api.log"
    env = {**os.environ, **kick_env, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    with (SCREENSHOTS / "manage-worker.log").open("ab") as worker_log:
        worker = subprocess.Popen([*LUMIO, "worker"], env=env, stdout=worker_log, stderr=worker_log)
    api = ApiProcess(database_url, redis_url, log, env=kick_env)
    try:
        api.start()
        yield api
    finally:
        if api.process is not None:
            api.stop()
        worker.terminate()
        worker.wait(timeout=15)


@pytest.fixture
async def client(server: ApiProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        yield http


async def no_violations(page: Page, name: str) -> None:
    await page.screenshot(path=screenshot_path(name), full_page=True)
    assert await axe_violations(page) == [], name


async def open_view(page: Page, name: str) -> None:
    await page.get_by_role("navigation", name="Views").get_by_role("link", name=name).click()


@pytest.fixture
async def second(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A second browser (another device of the same person, or the invited person)."""
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    yield context
    await context.close()


async def test_link_a_kick_channel_it_goes_live_then_unlink(
    page: Page, server: ApiProcess, factory: Factory, kick: tuple[FakeKickState, str]
) -> None:
    state, _ = kick
    name = f"nova_{uuid.uuid4().hex[:6]}"
    channel = state.add_channel(name, display_name="Nova")
    account, owner = await factory.account("Nova")
    await sign_in(page, server.base_url, owner)

    form = page.locator("#link-form")
    await form.get_by_label("Platform").select_option("kick")
    await form.get_by_label("Channel URL, handle or login").fill("kick.com/nobody_here_at_all")
    await form.get_by_role("button", name="Check").click()
    await expect(page.locator("#link-error")).to_have_text("This channel does not exist on Kick.")

    await form.get_by_label("Channel URL, handle or login").fill(f"https://kick.com/{name}")
    await form.get_by_role("button", name="Check").click()
    await expect(page.locator("#link-preview-text")).to_contain_text(f"Kick channel found: {name}")
    await no_violations(page, "manage-link-preview")
    await page.get_by_role("button", name="Link this channel").click()
    await expect(card(page, Platform.KICK)).to_be_visible()
    assert [c.channel_id for c in await channels.list_linked(factory.db, account)] == [
        channel.channel_id
    ]

    state.set_live(channel.channel_id, title="Kick night", viewers=12)
    badge = card(page, Platform.KICK).locator(".badge")
    await expect(badge).to_have_text("Live", timeout=POLL_SECONDS * 1000 * 8)
    await expect(page.locator("#summary")).to_have_text("Live now on 1 of 1 platform: Kick")

    await page.get_by_role("button", name="Unlink Kick").click()
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("button", name="Unlink Kick")).to_be_focused()
    await page.get_by_role("button", name="Unlink Kick").click()
    await page.get_by_role("button", name="Yes, unlink Kick").click()
    await expect(card(page, Platform.KICK)).to_have_count(0)
    assert await channels.list_linked(factory.db, account) == []
    state.set_offline(channel.channel_id)


async def test_a_stale_card_says_so_and_is_not_counted(
    page: Page, server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    account, owner = await factory.account("Nova")
    await link(factory.db, account, Platform.TWITCH, "nova_plays")
    await link(factory.db, account, Platform.YOUTUBE, "Nova")
    await go_live(factory.db, redis, account, Platform.TWITCH, "Speedrun", 10)
    since = datetime.now(UTC) - timedelta(minutes=10)
    await factory.db.execute(
        "UPDATE platform_channels SET last_error = 'timeout: no answer in 10 s', error_since = $2"
        " WHERE account_id = $1 AND platform = 'twitch'",
        account,
        since,
    )
    await sign_in(page, server.base_url, owner)
    health = card(page, Platform.TWITCH).locator('[data-field="health"]')
    clock = await page.evaluate(
        "(iso) => { const d = new Date(iso); const two = (n) => String(n).padStart(2, '0');"
        " return `${two(d.getHours())}:${two(d.getMinutes())}`; }",
        since.isoformat(),
    )
    await expect(health).to_have_text(
        f"Twitch has not answered since {clock} — the status shown may be out of date."
        " Last error: timeout."
    )
    await expect(page.locator("#summary")).to_have_text(
        "Not confirmed live anywhere (2 linked) — Twitch not answering: status unknown"
    )
    await no_violations(page, "manage-stale-card")


async def test_invite_a_moderator_who_signs_up_then_demote_and_remove(
    page: Page,
    second: BrowserContext,
    server: ApiProcess,
    factory: Factory,
    client: httpx.AsyncClient,
) -> None:
    account, owner = await factory.account("Nova")
    await link(factory.db, account, Platform.KICK, "nova")
    await sign_in(page, server.base_url, owner)
    await open_view(page, "Members")
    await expect(page.locator("#members-rows tr")).to_have_count(1)
    email = f"mod-{uuid.uuid4().hex[:6]}@example.com"
    await page.locator("#invite-form").get_by_label("Email").fill(email)
    await page.locator("#invite-form").get_by_label("Role").select_option("moderator")
    await page.get_by_role("button", name="Add or invite").click()
    link_field = page.get_by_label("Invitation link (valid 7 days, works once)")
    await expect(link_field).to_have_value(re.compile(re.escape(server.base_url) + "/#invitation="))
    invite_link = await link_field.input_value()
    await expect(page.locator("#invitations li")).to_contain_text(f"{email} as Moderator")
    await no_violations(page, "manage-members")

    moderator = await second.new_page()
    await moderator.goto(invite_link)
    await expect(moderator.get_by_role("heading", name="Join with your invitation")).to_be_visible()
    assert await axe_violations(moderator) == [], "invitation page"
    await (
        moderator.locator("#invitation-form")
        .get_by_label("New password")
        .fill("moderator password")
    )
    await moderator.get_by_role("button", name="Create my login").click()
    await expect(moderator.locator("#role-name")).to_have_text("moderator")
    await expect(card(moderator, Platform.KICK)).to_be_visible()
    # Status, but no Start/Stop, no channel controls, no members.
    await expect(moderator.locator("#manual-readonly")).to_be_visible()
    await expect(moderator.get_by_role("button", name="Start manual connect")).to_be_hidden()
    await expect(moderator.locator("#link-form")).to_be_hidden()
    await expect(moderator.get_by_role("button", name="Unlink Kick")).to_have_count(0)
    await expect(moderator.get_by_role("link", name="Members")).to_be_hidden()
    await moderator.screenshot(path=screenshot_path("manage-moderator-phone"), full_page=True)
    # The link worked once.
    reused = await client.post(
        "/v1/invitations/accept",
        json={"token": invite_link.rsplit("=", 1)[1], "password": "another password"},
    )
    assert reused.status_code == 404

    await page.reload()
    row = page.locator(f'#members-rows tr[data-email="{email}"]')
    await row.get_by_label(f"Role of {email}", exact=True).select_option("viewer")
    await row.get_by_role("button", name=f"Change role of {email}").click()
    await expect(page.locator("#announcer")).to_have_text(f"{email} is now Viewer.")
    await moderator.reload()
    await expect(moderator.locator("#no-access")).to_be_visible()

    await page.get_by_role("button", name=f"Remove {email}").click()
    await page.get_by_role("button", name="Yes, remove").click()
    await expect(page.locator(f'#members-rows tr[data-email="{email}"]')).to_have_count(0)
    await moderator.reload()
    await expect(moderator.locator("#no-access")).to_be_visible()
    assert await accounts_repository.list_members(factory.db, account) != []
    assert len(await accounts_repository.list_members(factory.db, account)) == 1


async def test_last_owner_rules_in_the_ui(page: Page, server: ApiProcess, factory: Factory) -> None:
    account, owner = await factory.account("Nova")
    admin = await factory.member(account, RoleName.ADMINISTRATOR)
    await sign_in(page, server.base_url, owner)
    await open_view(page, "Members")
    row = page.locator(f'#members-rows tr[data-email="{owner.email}"]')
    await row.get_by_label(f"Role of {owner.email}", exact=True).select_option("administrator")
    await row.get_by_role("button", name=f"Change role of {owner.email}").click()
    await expect(page.locator("#members-error")).to_contain_text("the last Owner")
    await row.get_by_role("button", name=f"Remove {owner.email}").click()
    await page.get_by_role("button", name="Yes, remove").click()
    await expect(page.locator("#members-error")).to_contain_text("the last Owner")
    assert (
        await accounts_repository.member_role(factory.db, account, owner.user_id) is RoleName.OWNER
    )

    # An Administrator cannot touch the Owner, nor offer the Owner role.
    await page.get_by_role("button", name="Log out").click()
    await sign_in(page, server.base_url, admin)
    await open_view(page, "Members")
    owner_row = page.locator(f'#members-rows tr[data-email="{owner.email}"]')
    await expect(owner_row).to_contain_text("Only an Owner can change an Owner.")
    await expect(page.locator("#invite-role option")).to_have_count(3)
    # Nor raise their own role: the server refuses a forged request too.
    me = await page.evaluate("() => document.cookie")
    assert "lumio_session" not in me  # HttpOnly
    raised = await page.evaluate(
        """async ([url, id]) => {
            const me = await (await fetch("/v1/me")).json();
            const r = await fetch(url + id, {method: "PUT", headers: {
                "Content-Type": "application/json", "X-CSRF-Token": me.csrfToken},
                body: JSON.stringify({role: "owner"})});
            return r.status;
        }""",
        ["/v1/members/", str(admin.user_id)],
    )
    assert raised == 403


async def test_create_and_revoke_a_key(
    page: Page, server: ApiProcess, factory: Factory, client: httpx.AsyncClient
) -> None:
    account, owner = await factory.account("Nova")
    moderator = await factory.member(account, RoleName.MODERATOR)
    await sign_in(page, server.base_url, owner)
    await open_view(page, "API keys")
    await page.locator("#key-form").get_by_label("Name").fill("stream deck")
    await page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Your new key (copy it now: it is not shown again)")
    await expect(secret).to_be_focused()
    key = await secret.input_value()
    assert key.startswith("lumio_")
    await expect(page.get_by_role("button", name="Copy key")).to_be_visible()
    bearer = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/v1/channel-status", headers=bearer)).status_code == 200
    # The Owner sees every key of the account: the moderator's too.
    everyone = page.locator("#account-keys-rows")
    await expect(everyone.locator("tr")).to_have_count(3)
    await expect(everyone).to_contain_text(moderator.email)
    await no_violations(page, "manage-keys")

    await page.get_by_role("button", name=f"Revoke key stream deck ({key[:12]}…)").first.click()
    await expect(page.locator("#keys-rows")).to_contain_text("Revoked")
    assert (await client.get("/v1/channel-status", headers=bearer)).status_code == 401
    # ...and revokes the moderator's key.
    moderator_prefix = moderator.api_key[:12]
    await everyone.get_by_role("button", name=f"Revoke key test ({moderator_prefix}…)").click()
    await expect(everyone.locator(f'tr[data-prefix="{moderator_prefix}"]')).to_contain_text(
        "Revoked"
    )
    revoked = await client.get("/v1/channel-status", headers=moderator.bearer)
    assert revoked.status_code == 401


async def sign_in_elsewhere(context: BrowserContext, base_url: str, member: Member) -> Page:
    other = await context.new_page()
    await sign_in(other, base_url, member)
    return other


async def test_change_password_signs_out_the_other_session(
    page: Page,
    second: BrowserContext,
    server: ApiProcess,
    factory: Factory,
    client: httpx.AsyncClient,
) -> None:
    _, owner = await factory.account("Nova")
    other = await sign_in_elsewhere(second, server.base_url, owner)
    await sign_in(page, server.base_url, owner)
    await open_view(page, "Your account")
    await expect(page.locator("#sessions li")).to_have_count(2)
    await page.locator("#password-form").get_by_label("Current password").fill("wrong password")
    await page.locator("#password-form").get_by_label("New password").fill("a brand new password")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.locator("#password-error")).to_have_text("the current password is wrong")
    await page.locator("#password-form").get_by_label("Current password").fill(owner.password)
    await page.locator("#password-form").get_by_label("New password").fill("a brand new password")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.locator("#password-result")).to_have_text(
        "Your password is changed; your other sessions are signed out."
    )
    await expect(page.locator("#sessions li")).to_have_count(1)
    await no_violations(page, "manage-account")

    await other.reload()
    await expect(other.get_by_role("heading", name="Sign in to Lumio")).to_be_visible()
    old = await client.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert old.status_code == 401
    await page.reload()
    await expect(page.locator("#dashboard")).to_be_visible()


async def test_create_an_account_and_switch(
    page: Page, server: ApiProcess, factory: Factory
) -> None:
    _, owner = await factory.account("Nova")
    await sign_in(page, server.base_url, owner)
    await open_view(page, "Your account")
    await page.get_by_label("Account name").fill("Nova Music")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Nova Music — live status")
    await expect(page.locator("#role-name")).to_have_text("owner")
    await page.get_by_label("Account", exact=True).select_option(label="Nova (owner)")
    await page.get_by_role("button", name="Switch").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Nova — live status")


async def test_throttled_sign_in_says_how_long_to_wait(
    page: Page, server: ApiProcess, factory: Factory
) -> None:
    _, owner = await factory.account("Nova")

    async def throttle(route: Route) -> None:
        problem = {"title": "Too many requests", "status": 429, "code": "RATE_LIMITED"}
        await route.fulfill(
            status=429,
            headers={"Retry-After": "30", "Content-Type": "application/problem+json"},
            body=json.dumps(problem | {"detail": "too many sign-in attempts"}),
        )

    await page.route("**/v1/auth/login", throttle)
    await page.goto(server.base_url + "/")
    await page.get_by_label("Email").fill(owner.email)
    await page.get_by_label("Password").fill("guess")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#signin-error")).to_contain_text(
        "too many attempts, try again in 30 s"
    )
    await expect(page.locator("#signin-error")).to_contain_text("try again in 2")
    assert await axe_violations(page) == [], "throttled sign-in"


async def test_the_music_card_never_claims_spotify_without_a_link(
    page: Page, server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    account, owner = await factory.account("Nova")
    await link(factory.db, account, Platform.YOUTUBE, "Nova")
    await go_live(factory.db, redis, account, Platform.YOUTUBE, "Chill beats", 42)
    await sign_in(page, server.base_url, owner)
    note = page.locator("#gate-note")
    await expect(note).to_have_text(
        "No Spotify account is linked: nothing is read, although you are live on YouTube."
    )
    await expect(note).not_to_contain_text("connected")
