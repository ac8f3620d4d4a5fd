"""External-database mode end to end, as docker compose runs it: a separate Postgres + pgvector
server (the embedded wheel's, in its own process on its own port, standing in for the `db`
service), FACEREC_DATABASE_URL built the way docker-compose.yml builds it, and two service
processes started at the same moment against it, so that both migrate at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from app.db.embedded import EmbeddedPostgres
from app.db.migrate import head_revision
from tests.conftest import face_bytes
from tests.deploy import dockerfile
from tests.local_http import closed_port_url

# Each replica imports torch and loads both models, two at once on a small shared machine.
READY_DEADLINE_S = 240
STOP_TIMEOUT_S = 30
COLLECTION = "replicas"
DB_USER, DB_PASSWORD, DB_NAME = "facerec", "compose-password-0123", "facerec_compose"


@dataclass
class Replica:
    base_url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Postgres of its own with a password-holding superuser, as the pgvector image creates it."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("external-db") / "pgdata")
    server.start()
    try:
        admin_url = server.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f"CREATE ROLE {DB_USER} LOGIN SUPERUSER PASSWORD '{DB_PASSWORD}'")
            connection.execute(f"CREATE DATABASE {DB_NAME} OWNER {DB_USER}")
        yield f"postgresql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{server.port}/{DB_NAME}"
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError as error:
            pytest.fail(f"stopping the external Postgres failed ({error.returncode}): {error.stderr}")


def _start_replica(*, index: int, database_url: str, weights_file: tuple[Path, str], workdir: Path) -> Replica:
    weights, sha256 = weights_file
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FACEREC_")}
    env.update(
        {
            "FACEREC_DATABASE_URL": database_url,
            "FACEREC_HOST": "127.0.0.1",
            "FACEREC_PORT": str(port),
            "FACEREC_WEIGHTS_PATH": str(weights),
            "FACEREC_WEIGHTS_SHA256": sha256,
            "FACEREC_ALLOW_DOWNLOAD": "false",
            "FACEREC_DATA_DIR": str(workdir / f"data-{index}"),
            "FACEREC_MODEL_DIR": str(workdir / f"models-{index}"),
            "FACEREC_DEVICE": "cpu",
            "FACEREC_TORCH_THREADS": "1",
            "FACEREC_DB_POOL_SIZE": "2",
        }
    )
    log = workdir / f"replica-{index}.log"
    with log.open("wb") as output:
        # cwd is a scratch folder, so that no .env of the developer's is read.
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"], cwd=workdir, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    return Replica(base_url=f"http://127.0.0.1:{port}", port=port, process=process, log=log)


def _wait_until_ready(replica: Replica, *, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{replica.base_url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:
            replica.process.wait(timeout=1)  # the poll interval, which also notices an early exit
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"replica on port {replica.port} exited with {replica.process.returncode}:\n{replica.log_tail()}")
    pytest.fail(f"replica on port {replica.port} was not ready within {READY_DEADLINE_S} s:\n{replica.log_tail()}")


def _stop(replica: Replica) -> None:
    replica.process.terminate()
    try:
        replica.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        replica.process.kill()
        replica.process.wait()


@pytest.fixture(scope="module")
def replicas(
    database_url: str, weights_file: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Replica]]:
    workdir = tmp_path_factory.mktemp("replicas")
    started: list[Replica] = []
    try:
        for index in range(2):
            started.append(
                _start_replica(index=index, database_url=database_url, weights_file=weights_file, workdir=workdir)
            )
        deadline = time.monotonic() + READY_DEADLINE_S
        for replica in started:
            _wait_until_ready(replica, deadline=deadline)
        yield started
    finally:
        for replica in started:
            _stop(replica)


def test_two_replicas_started_together_migrate_the_shared_database_once(
    replicas: list[Replica], database_url: str
) -> None:
    readiness = [httpx.get(f"{replica.base_url}/readyz", timeout=10) for replica in replicas]

    with psycopg.connect(database_url) as connection:
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert versions == [(head_revision(),)]
    for response in readiness:
        assert response.status_code == 200
        assert response.json()["status"] == "ready"
    for replica in replicas:
        assert "Traceback" not in replica.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def admin_headers(replicas: list[Replica], database_url: str) -> dict[str, str]:
    """A key made with `facerec keys create` against the shared database, as an operator would."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FACEREC_")}
    env["FACEREC_DATABASE_URL"] = database_url
    created = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "create", "--name", "replicas", "--scope", "admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {"Authorization": "Bearer " + created.stdout.split("secret (shown once): ", 1)[1].strip()}


def test_face_enrolled_through_one_replica_is_identified_through_the_other(
    replicas: list[Replica], faces_dir: Path, admin_headers: dict[str, str]
) -> None:
    first, second = replicas
    al_gore = face_bytes(faces_dir, "lfw_al_gore/1.jpg")
    hopkins = face_bytes(faces_dir, "anthony_hopkins/1.jpg")
    enrolled = httpx.post(
        f"{first.base_url}/enroll",
        files={"image": ("al_gore.jpg", al_gore, "image/jpeg")},
        data={"subject": "Al Gore", "collection": COLLECTION},
        headers=admin_headers,
        timeout=120,
    )
    other = httpx.post(
        f"{first.base_url}/enroll",
        files={"image": ("hopkins.jpg", hopkins, "image/jpeg")},
        # The untrained weights make every face alike: without allow, the duplicate-identity guard refuses him.
        data={"subject": "Anthony Hopkins", "collection": COLLECTION, "on_conflict": "allow"},
        headers=admin_headers,
        timeout=120,
    )

    identified = httpx.post(
        f"{second.base_url}/identify",
        files={"image": ("probe.jpg", al_gore, "image/jpeg")},
        data={"collection": COLLECTION},
        headers=admin_headers,
        timeout=120,
    )

    assert (enrolled.status_code, other.status_code) == (201, 201), (enrolled.text, other.text)
    assert identified.status_code == 200, identified.text
    (face,) = identified.json()["faces"]
    assert face["match"]["subject"] == "Al Gore"
    assert face["match"]["subject_id"] == enrolled.json()["subject_id"]
    assert face["match"]["similarity"] > 0.99


def test_image_healthcheck_command_passes_against_a_ready_replica_and_fails_without_one(
    replicas: list[Replica],
) -> None:
    (healthcheck,) = dockerfile.parse().final.all("HEALTHCHECK")
    command = [sys.executable, *healthcheck.exec_form()[1:]]
    closed_port = closed_port_url("").rsplit(":", 1)[1].strip("/")

    def probe(port: int | str) -> int:
        env = {**os.environ, "FACEREC_PORT": str(port)}
        return subprocess.run(command, env=env, capture_output=True, timeout=30, check=False).returncode

    assert probe(replicas[1].port) == 0
    assert probe(closed_port) != 0
