"""Shared fixtures: a real embedded Postgres, real MTCNN, and an untrained InceptionResnetV1
state_dict written to disk and loaded through the service's own weights path (never trained
weights, never a mocked database)."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import torch
from facenet_pytorch import InceptionResnetV1
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from PIL import Image
from starlette.routing import BaseRoute

from app.composition import open_engine
from app.config import Settings
from app.db.embedded import EmbeddedPostgres
from app.engine.engine import FaceEngine
from app.engine.faces import Embedder
from app.main import create_app
from app.services.access import SYSTEM, Scope
from app.services.container import Services
from tests.embedder import LabelledEmbedder, build_embedder

REPO_ROOT = Path(__file__).resolve().parents[1]
FACES_DIR = Path(os.environ.get("FACEREC_TEST_FACES_DIR", REPO_ROOT.parent / "shared" / "faces"))
FACES_MISSING_REASON = (
    f"the labelled photos are not at {FACES_DIR} (set FACEREC_TEST_FACES_DIR to the shared/faces folder)"
)

requires_faces = pytest.mark.skipif(not (FACES_DIR / "manifest.csv").is_file(), reason=FACES_MISSING_REASON)


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES_DIR / "manifest.csv").is_file():
        pytest.skip(FACES_MISSING_REASON)
    return FACES_DIR


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An untrained InceptionResnetV1 saved in the release file's format (classifier included)."""
    torch.manual_seed(1234)
    model = InceptionResnetV1(pretrained=None)
    model.logits = torch.nn.Linear(512, 8631)
    path = tmp_path_factory.mktemp("weights") / "20180402-114759-vggface2.pt"
    torch.save(model.state_dict(), path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "pgdata")
    server.start()
    yield server
    server.stop()


def make_settings(
    *, postgres: EmbeddedPostgres, weights_file: tuple[Path, str], data_dir: Path, **overrides: object
) -> Settings:
    path, sha256 = weights_file
    values: dict[str, object] = {
        "database_url": postgres.url,
        "weights_path": path,
        "weights_sha256": sha256,
        "allow_download": False,
        "data_dir": data_dir,
        # One model dir for the session: the ONNX export cached there is made once, not per app.
        "model_dir": path.parent / "models",
        "torch_threads": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(
    postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return make_settings(postgres=postgres, weights_file=weights_file, data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def engine(settings: Settings) -> FaceEngine:
    """The service's own engine for these settings (ONNX Runtime on the CPU, untrained embedder weights)."""
    return open_engine(settings)


@pytest.fixture(scope="session")
def labelled_embedder(engine: FaceEngine) -> LabelledEmbedder:
    """The controlled embedder (tests/embedder.py), knowing every labelled photo of the faces folder."""
    return build_embedder(engine, faces_dir=FACES_DIR)


@contextmanager
def running_app(
    settings: Settings, *, embedder: Embedder | None = None, ready_within_s: float = 60.0
) -> Iterator[TestClient]:
    """The app with its lifespan running, once /readyz says the database is migrated and ready.

    With authentication on (the default, as in production) the client sends an admin key that
    the running service issued through its own key service. `embedder` replaces the real one.
    """
    with TestClient(create_app(settings, embedder=embedder), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + ready_within_s
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.05)
        if settings.auth_enabled:
            client.headers["Authorization"] = f"Bearer {issue_key(client, [Scope.ADMIN])}"
        yield client


def issue_key(client: TestClient, scopes: list[Scope], collections: list[str] | None = None) -> str:
    """A new key from the running app's own key service (the way POST /keys makes them)."""
    services: Services = client.app_state["services"]
    assert client.portal is not None
    issued = client.portal.call(
        functools.partial(services.keys.create, name="test", scopes=scopes, collections=collections, principal=SYSTEM)
    )
    return issued.token


@pytest.fixture(scope="session")
def app_client(settings: Settings, labelled_embedder: LabelledEmbedder) -> Iterator[TestClient]:
    """One running app for the whole session: the real detector, and the controlled embedder, so that
    different people differ (the untrained weights make every face alike)."""
    with running_app(settings, embedder=labelled_embedder) as client:
        yield client


def reset_database(url: str) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        connection.execute("TRUNCATE faces, subjects, collections, idempotency_keys RESTART IDENTITY CASCADE")
        connection.execute("INSERT INTO collections (name) VALUES ('default')")


@pytest.fixture
def client(app_client: TestClient, postgres: EmbeddedPostgres) -> TestClient:
    """The running app over an empty gallery (only the default collection)."""
    reset_database(postgres.url)
    return app_client


def encode(image: Image.Image, image_format: str = "JPEG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **params)
    return buffer.getvalue()


def face_bytes(faces_dir: Path, relative: str) -> bytes:
    return (faces_dir / relative).read_bytes()


def api_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """Every APIRoute, including those inside routers that FastAPI keeps as included-router nodes."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif (router := getattr(route, "original_router", None)) is not None:
            found.extend(api_routes(router.routes))
    return found
