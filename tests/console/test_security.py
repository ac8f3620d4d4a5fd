"""The console's page and files: public, under a strict CSP, with no inline code, talking only to its origin."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import httpx
from playwright.sync_api import expect

from app.api.routes.console import CONTENT_SECURITY_POLICY, STATIC_DIR
from tests.console.conftest import ConsolePage, LiveService

CONSOLE_PATHS = ["/", "/console/console.css", "/console/js/main.js", "/console/favicon.svg"]
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class _InlineCodeFinder(HTMLParser):
    """Collects everything a strict CSP would block or that would reach another origin."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self._in_script = tag == "script"
        if tag == "script":
            self.scripts.append(attributes.get("src") or "")
            if not attributes.get("src"):
                self.problems.append("a <script> without src")
        if tag == "style":
            self.problems.append("a <style> element")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name in ("src", "href") and value and not value.startswith(("/", "#")):
                self.problems.append(f"<{tag} {name}={value!r}> is not a path on this service")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline script text")


def test_console_responses_carry_the_strict_csp_and_docs_do_not(live_service: LiveService) -> None:
    with httpx.Client(base_url=live_service.base_url) as client:
        console = {path: client.get(path) for path in CONSOLE_PATHS}
        docs = client.get("/docs")

    assert CONTENT_SECURITY_POLICY == STRICT_CSP
    for path, response in console.items():
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == STRICT_CSP, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
    assert docs.status_code == 200
    assert "content-security-policy" not in docs.headers


def test_index_html_has_no_inline_script_style_or_foreign_url() -> None:
    finder = _InlineCodeFinder()

    finder.feed((STATIC_DIR / "index.html").read_text())

    assert finder.problems == []
    assert finder.scripts == ["/console/js/main.js"]


def test_console_files_are_public_but_the_api_still_needs_a_key(live_service: LiveService) -> None:
    public = [*CONSOLE_PATHS, "/static-offline-docs/swagger-ui-bundle.js", "/static-offline-docs/redoc.standalone.js"]
    with httpx.Client(base_url=live_service.base_url) as client:
        opened = {path: client.get(path).status_code for path in public}
        refused = {path: client.get(path).status_code for path in ("/subjects", "/keys", "/console", "/consoles")}

    assert opened == dict.fromkeys(public, 200)
    assert refused == dict.fromkeys(refused, 401)


def test_console_makes_no_request_to_any_other_origin(
    console: ConsolePage, live_service: LiveService, faces_dir: Path
) -> None:
    page = console.page
    console.open(live_service.admin_key)
    page.set_input_files("#identify-photo-file", faces_dir / "joe_biden/2.jpg")
    expect(page.locator("#identify-stage canvas")).to_be_visible()
    page.click("#identify-submit")
    expect(page.locator("#identify-stage svg .face")).to_have_count(1)
    for view in ("Enrol", "Verify", "Gallery", "Admin"):
        console.tab(view)
        console.shot(f"view-{view.lower()}")
    expect(page.locator("#audit table")).to_be_attached()
    page.set_viewport_size({"width": 420, "height": 900})
    console.tab("Identify")
    console.shot("narrow-identify")

    foreign = console.foreign_requests()

    assert foreign == []
    assert console.requests_to("/console/js/main.js")
    assert console.requests_to("/identify")
    files = {url: status for url, status in console.statuses.items() if "/console/" in url}
    assert files
    assert set(files.values()) <= {200, 304}
