"""The console's fixtures: the real service on a loopback socket, and one headless Chromium for the session.

The service runs in uvicorn on its own thread and event loop, over the session's embedded Postgres
and the untrained model. Chromium is Debian's package driven by Playwright (Playwright's own browser
download is never used); it runs with every host name but 127.0.0.1 unresolvable, so nothing the
console or the docs load can come from the internet.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, sync_playwright

from app.config import Settings
from app.db.embedded import EmbeddedPostgres
from app.main import create_app
from app.services.access import SYSTEM, Scope
from app.services.container import Services
from tests.conftest import reset_database
from tests.embedder import LabelledEmbedder
from tests.local_http import serve_app

CHROMIUM_VARIABLE = "FACEREC_TEST_CHROMIUM"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The network is cut: only the service on 127.0.0.1 resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
SCREENSHOT_DIR_VARIABLE = "FACEREC_CONSOLE_SCREENSHOTS"
UI_TIMEOUT_MS = 30_000
BLOCKED_BY_CSP = {"csp", "net::ERR_BLOCKED_BY_CSP"}  # how Chromium reports a request its CSP refused
_screenshot_dirs: list[Path] = []


@dataclass
class LiveService:
    """The service on a real socket, and a way to issue keys through its own key service."""

    base_url: str
    services: Services
    loop: asyncio.AbstractEventLoop
    admin_key: str = ""

    def issue_key(self, scopes: list[Scope], *, collections: list[str] | None = None) -> str:
        create = self.services.keys.create(
            name="console-test", scopes=scopes, collections=collections, principal=SYSTEM
        )
        return asyncio.run_coroutine_threadsafe(create, self.loop).result(timeout=30).token

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def enrol(self, photo: Path, *, subject: str, collection: str = "default") -> dict[str, Any]:
        with self.client() as client:
            files = {"image": (photo.name, photo.read_bytes())}
            response = client.post("/enroll", files=files, data={"subject": subject, "collection": collection})
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(scope="package")
def live_service(
    settings: Settings, postgres: EmbeddedPostgres, labelled_embedder: LabelledEmbedder
) -> Iterator[LiveService]:
    """The service with the real detector and the controlled embedder (tests/embedder.py), as the API tests run it."""
    with serve_app(create_app(settings, embedder=labelled_embedder), name="console-uvicorn") as served:
        services = served.server.lifespan.state["services"]
        service = LiveService(base_url=served.base_url, services=services, loop=served.loop)
        service.admin_key = service.issue_key([Scope.ADMIN])
        reset_database(postgres.url)
        yield service


def find_chromium() -> Path | None:
    """FACEREC_TEST_CHROMIUM, else Debian's /usr/bin/chromium, else a chromium on PATH."""
    configured = os.environ.get(CHROMIUM_VARIABLE)
    candidates = [configured] if configured else ["/usr/bin/chromium", shutil.which("chromium")]
    return next((Path(found) for found in candidates if found and Path(found).is_file()), None)


# Package-scoped: Playwright's sync API keeps an event loop running in the main thread while it is
# open, which would break every later test that calls asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(f"no Chromium found (apt-get install chromium, or set {CHROMIUM_VARIABLE} to its binary)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get(SCREENSHOT_DIR_VARIABLE)
    folder = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    _screenshot_dirs.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in _screenshot_dirs:
        terminalreporter.write_line(f"console screenshots: {folder}")


@dataclass
class ConsolePage:
    """A fresh browser tab (its own session storage) that records every request and every error."""

    page: Page
    base_url: str
    screenshots: Path
    requests: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def record_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def record_response(self, response: Response) -> None:
        self.statuses[response.url] = response.status

    def record_failure(self, request: Request) -> None:
        self.failures[request.url] = request.failure or "failed"

    def record_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # Chromium logs each 4xx answer; the API's refusals are expected, a missing console file is not.
        resource = message.location.get("url", "")
        refused_api_call = message.text.startswith("Failed to load resource") and not _is_console_file(
            resource, self.base_url
        )
        if not refused_api_call:
            self.errors.append(f"console: {message.text} ({resource})")

    def open(self, key: str | None = None) -> None:
        """Open the console; with a key, enter it and wait for the views."""
        self.page.goto(f"{self.base_url}/")
        self.page.locator("#key-input").wait_for()
        if key is not None:
            self.page.fill("#key-input", key)
            self.page.click("#key-submit")
            self.page.locator("#tabs").wait_for()

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def foreign_requests(self) -> list[str]:
        """Requests anywhere but the service, with the reason each failed (here no other host resolves).

        A blob: URL of the page's own origin is a photo in memory; a request the page's CSP blocked
        never left the browser.
        """
        own = (f"{self.base_url}/", f"blob:{self.base_url}/")
        return [
            f"{url} ({self.failures.get(url, 'answered')})"
            for url in self.requests
            if not url.startswith(own) and self.failures.get(url) not in BLOCKED_BY_CSP
        ]

    def take_csp_reports(self, url: str) -> list[str]:
        """The console errors saying the CSP blocked url, removed from the errors a test must not have."""
        reports = [error for error in self.errors if url in error and "Content Security Policy" in error]
        self.errors = [error for error in self.errors if error not in reports]
        return reports

    def requests_to(self, path: str) -> list[str]:
        return [url for url in self.requests if re.fullmatch(rf"{re.escape(self.base_url)}{path}(\?.*)?", url)]


def _is_console_file(url: str, base_url: str) -> bool:
    return url == f"{base_url}/" or url.startswith(f"{base_url}/console/")


@pytest.fixture
def console(browser: Browser, live_service: LiveService, screenshot_dir: Path) -> Iterator[ConsolePage]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    tab = ConsolePage(page=page, base_url=live_service.base_url, screenshots=screenshot_dir)
    context.on("request", tab.record_request)
    context.on("response", tab.record_response)
    context.on("requestfailed", tab.record_failure)
    page.on("console", tab.record_console)
    page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))
    yield tab
    context.close()
    # Every test's whole visit, not only the one that checks it: nothing leaves the service's origin.
    assert tab.foreign_requests() == []
    assert tab.errors == []
