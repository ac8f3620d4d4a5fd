"""Keys in the console: asked for, kept in sessionStorage only, scopes explained, admin keys managed."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from app.services.access import Scope
from tests.console.conftest import ConsolePage, LiveService

KEY_PATTERN = re.compile(r"^frk_[0-9a-f]+_[A-Za-z0-9_-]{20,}$")


def test_wrong_key_is_refused_with_the_401_explanation(console: ConsolePage, live_service: LiveService) -> None:
    page = console.page
    console.open()

    page.fill("#key-input", "frk_0000000000_" + "x" * 43)
    page.click("#key-submit")

    refusal = page.locator("#key-messages [role=alert]")
    expect(refusal).to_contain_text("did not accept this API key")
    expect(refusal).to_contain_text("Enter another key")
    expect(refusal.locator("code")).to_have_text("UNAUTHENTICATED")
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    console.shot("key-refused")


def test_key_revoked_while_in_use_is_explained_and_another_can_be_entered(
    console: ConsolePage, live_service: LiveService
) -> None:
    page = console.page
    key = live_service.issue_key([Scope.MANAGE])
    console.open(key)
    with live_service.client() as client:
        key_id = next(k["id"] for k in client.get("/keys").json()["items"] if key.startswith(k["prefix"] + "_"))
        assert client.delete(f"/keys/{key_id}").status_code == 200

    console.tab("Gallery")

    banner = page.locator("#banner [role=alert]")
    expect(banner).to_contain_text("revoked")
    expect(banner.locator("code")).to_have_text("UNAUTHENTICATED")
    banner.get_by_role("button", name="Enter another key").click()
    expect(page.locator("#key-input")).to_be_focused()
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_key_without_admin_scope_gets_no_working_admin_view_and_is_told_why(
    console: ConsolePage, live_service: LiveService
) -> None:
    page = console.page
    key = live_service.issue_key([Scope.IDENTIFY, Scope.MANAGE])
    console.open(key)

    console.tab("Admin")

    denied = page.locator("#admin-denied")
    expect(denied).to_contain_text("need a key with the admin scope")
    expect(denied).to_contain_text("lacks the “admin” scope")
    expect(denied.locator("code")).to_have_text("INSUFFICIENT_SCOPE")
    expect(page.locator("#admin-content")).to_be_hidden()
    assert console.requests_to("/audit") == []
    console.shot("admin-denied")


def test_action_outside_the_key_scopes_names_the_scope_it_needs(
    console: ConsolePage, live_service: LiveService
) -> None:
    page = console.page
    console.open(live_service.issue_key([Scope.IDENTIFY]))

    console.tab("Gallery")

    refusal = page.locator("#gallery-messages [role=alert]").first
    expect(refusal).to_contain_text("lacks the “manage” scope, which this action needs")
    expect(refusal.locator("code")).to_have_text("INSUFFICIENT_SCOPE")


def test_admin_creates_a_key_and_sees_its_secret_once(console: ConsolePage, live_service: LiveService) -> None:
    page = console.page
    console.open(live_service.admin_key)
    console.tab("Admin")
    page.fill("#new-key-name", "door-camera")
    page.check("#key-scopes input[value=identify]")
    page.fill("#new-key-collections", "staff")

    page.click("#key-create-submit")

    secret = page.locator("#secret-value")
    expect(secret).to_have_text(KEY_PATTERN)
    token = secret.inner_text()
    expect(page.locator("#keys table")).to_contain_text("door-camera")
    console.shot("admin-key-created")
    page.click("#secret-dismiss")
    expect(page.locator("#secret-box")).to_be_hidden()
    expect(page.locator("body")).not_to_contain_text(token)
    with live_service.client(token) as client:
        assert client.post("/identify").status_code != 401  # the new key works (422: no image sent)


def test_key_stays_in_session_storage_and_out_of_urls_and_local_storage(
    console: ConsolePage, live_service: LiveService
) -> None:
    page = console.page
    key = live_service.admin_key
    console.open(key)
    for view in ("Gallery", "Admin", "Identify"):
        console.tab(view)
    expect(page.locator("#keys table")).to_be_attached()

    page.reload()
    page.locator("#tabs").wait_for()

    assert page.evaluate("Object.values(sessionStorage)") == [key]
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert [url for url in console.requests if key in url] == []
    assert console.requests_to("/keys")
