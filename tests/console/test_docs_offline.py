"""/docs and /redoc work with the network cut: their scripts come from the service (fastapi-offline).

The browser resolves no host but 127.0.0.1 (see CHROMIUM_ARGS), and the `console` fixture fails the
test if any request leaves the service's origin.
"""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.console.conftest import ConsolePage, LiveService

REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_openapi_declares_the_bearer_and_x_api_key_schemes(live_service: LiveService) -> None:
    document = httpx.get(f"{live_service.base_url}/openapi.json").json()

    schemes = document["components"]["securitySchemes"]

    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["HTTPBearer"].items()
    assert {"type": "apiKey", "in": "header", "name": "X-API-Key"}.items() <= schemes["APIKeyHeader"].items()


def test_swagger_ui_lists_the_operations_and_tries_one_out_with_a_key_offline(
    console: ConsolePage, live_service: LiveService
) -> None:
    page = console.page
    page.goto(f"{live_service.base_url}/docs")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() > 10
    page.click("button.authorize")
    bearer = page.locator(".auth-container").filter(has_text="HTTPBearer")
    bearer.locator("#auth-bearer-value").fill(live_service.admin_key)
    bearer.locator("button.authorize").click()
    expect(bearer.get_by_role("button", name="Remove authorization")).to_be_visible()
    page.click(".modal-ux .close-modal")
    operation = page.locator("#operations-gallery-list_collections_collections_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()

    with page.expect_response(lambda response: response.url.endswith("/collections")) as answer:
        operation.get_by_role("button", name="Execute").click()

    assert answer.value.status == 200
    assert answer.value.request.headers["authorization"] == f"Bearer {live_service.admin_key}"
    expect(operation.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    assert console.requests_to("/static-offline-docs/swagger-ui-bundle.js")
    console.shot("docs-swagger", full_page=False)


def test_redoc_renders_from_the_services_own_script_offline(console: ConsolePage, live_service: LiveService) -> None:
    page = console.page

    page.goto(f"{live_service.base_url}/redoc")

    expect(page.locator("h1").first).to_contain_text("facerec")
    expect(page.get_by_text("Say who is in a photo").first).to_be_attached()
    assert console.requests_to("/static-offline-docs/redoc.standalone.js")
    # ReDoc's own logo from cdn.redoc.ly is the one thing refused, by /redoc's image policy.
    expect(page.locator("img[alt='redocly logo']")).to_have_count(0)
    assert console.failures == {REDOC_LOGO: "csp"}
    assert len(console.take_csp_reports(REDOC_LOGO)) == 1
    console.shot("docs-redoc", full_page=False)
