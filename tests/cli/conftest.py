"""The CLI's fixtures: its environment over the session's database and untrained model, photo folders
laid out for `enroll-dir`, and the real service on a loopback socket for remote mode.

The service runs in uvicorn on its own thread and event loop, behind a small ASGI wrapper that can
answer the next requests to a path with a 503 of our choosing (OVERLOADED, DEADLINE_EXCEEDED), so
retries are shown deterministically.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.db.embedded import EmbeddedPostgres
from app.main import create_app
from app.services.access import SYSTEM, Scope
from app.services.container import Services
from tests.conftest import make_settings
from tests.local_http import serve_app
from tests.test_cli import cli_env

AsgiScope = dict[str, Any]


@pytest.fixture(scope="package")
def local_env(
    tmp_path_factory: pytest.TempPathFactory, postgres: EmbeddedPostgres, weights_file: tuple[Path, str]
) -> dict[str, str]:
    """FACEREC_* for local commands: the session's database, the untrained weights, no duplicate guard
    (with these weights every face matches every other)."""
    weights_path, weights_sha256 = weights_file
    env = cli_env(
        tmp_path_factory.mktemp("cli-local"),
        database_url=postgres.url,
        weights_path=str(weights_path),
        weights_sha256=weights_sha256,
        allow_download="false",
        enroll_conflict_check="false",
        log_level="warning",
    )
    env["FACEREC_MODEL_DIR"] = str(weights_path.parent / "models")  # the session's ONNX exports, made once
    return env


def photo_tree(root: Path, *, faces_dir: Path, layout: dict[str, str], names: str | None = None) -> Path:
    """ROOT/<target> copied from faces_dir/<source> for each target: source of layout; names.csv if given."""
    for target, source in layout.items():
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(faces_dir / source, root / target)
    if names is not None:
        (root / "names.csv").write_text(names)
    return root


class RefuseNext:
    """ASGI middleware: the next requests to a path get the queued 503 error codes, then the app answers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.queued: dict[str, deque[str]] = {}
        self.refused: list[str] = []

    def queue(self, path: str, *codes: str) -> None:
        self.queued.setdefault(path, deque()).extend(codes)

    async def __call__(self, scope: AsgiScope, receive: Any, send: Any) -> None:
        pending = self.queued.get(scope.get("path", "")) if scope["type"] == "http" else None
        if not pending:
            await self.app(scope, receive, send)
            return
        code = pending.popleft()
        self.refused.append(code)
        while (await receive()).get("more_body", False):  # read the upload, as the real service would
            pass
        body = json.dumps({"error": {"code": code, "message": f"test: {code}", "details": {}}}).encode()
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"0")]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass
class LiveService:
    base_url: str
    services: Services
    loop: asyncio.AbstractEventLoop
    gate: RefuseNext

    def issue_key(self, scopes: list[Scope], *, name: str = "cli-test") -> str:
        create = self.services.keys.create(name=name, scopes=scopes, collections=None, principal=SYSTEM)
        return asyncio.run_coroutine_threadsafe(create, self.loop).result(timeout=30).token


@pytest.fixture(scope="package")
def live_service(
    postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """The real service (auth on, duplicate guard off) on 127.0.0.1, over the session's database."""
    settings = make_settings(
        postgres=postgres,
        weights_file=weights_file,
        data_dir=tmp_path_factory.mktemp("cli-service"),
        enroll_conflict_check=False,
    )
    gate = RefuseNext(create_app(settings))
    with serve_app(gate, name="cli-uvicorn") as served:
        services = served.server.lifespan.state["services"]
        yield LiveService(base_url=served.base_url, services=services, loop=served.loop, gate=gate)


@pytest.fixture(scope="package")
def remote_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """FACEREC_* for remote commands: nothing of the database or model (the service has them)."""
    return cli_env(tmp_path_factory.mktemp("cli-remote"), log_level="warning")
