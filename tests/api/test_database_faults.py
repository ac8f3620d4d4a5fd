"""The database going away: 503 with Retry-After (never 500), recovery without a restart,
and no enrolment that reported success is lost or stored twice."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from app.db.embedded import EmbeddedPostgres
from app.main import create_app
from tests.conftest import make_settings, running_app


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _poll(check: Any, *, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A server of this test's own, so that stopping it disturbs no other test."""
    server = EmbeddedPostgres(tmp_path / "pgdata", port=_free_port())
    server.start()
    yield server
    server.stop()


def test_service_waits_for_a_database_that_is_not_there_yet_then_becomes_ready(
    weights_file: tuple[Path, str], faces_dir: Path, tmp_path: Path
) -> None:
    server = EmbeddedPostgres(tmp_path / "pgdata", port=_free_port())
    # Keys live in the database being waited for: this test is about the wait, not about keys.
    settings = make_settings(
        postgres=server, weights_file=weights_file, data_dir=tmp_path, db_connect_timeout_s=1, auth_enabled=False
    )
    photo = (faces_dir / "lfw_al_gore/1.jpg").read_bytes()
    with TestClient(create_app(settings)) as client:
        waiting = client.get("/readyz")
        early = client.post("/enroll", files={"image": ("a.jpg", photo)}, data={"subject": "Al Gore"})
        server.start()
        try:
            _poll(lambda: client.get("/readyz").status_code == 200, within_s=60, what="readiness")
            late = client.post("/enroll", files={"image": ("a.jpg", photo)}, data={"subject": "Al Gore"})
        finally:
            server.stop()

    assert waiting.status_code == 503
    assert waiting.json()["checks"]["database"].startswith("waiting for the database")
    assert early.status_code == 503
    assert early.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert "Retry-After" in early.headers
    assert late.status_code == 201


def test_outage_while_enrolling_gives_503_then_recovers_and_keeps_every_success_once(
    own_postgres: EmbeddedPostgres, weights_file: tuple[Path, str], faces_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(
        postgres=own_postgres, weights_file=weights_file, data_dir=tmp_path, db_connect_timeout_s=1
    )
    photos = [
        (faces_dir / name).read_bytes() for name in ("lfw_al_gore/1.jpg", "anthony_hopkins/1.jpg", "amy_adams/1.jpg")
    ]
    results: list[tuple[int, dict[str, Any]]] = []
    stop = threading.Event()

    with running_app(settings) as client:

        def keep_enrolling() -> None:
            number = 0
            while not stop.is_set():
                response = client.post(
                    "/enroll",
                    files={"image": ("p.jpg", photos[number % len(photos)])},
                    # The same photos under ever new names: the duplicate-identity guard is not what is tested.
                    data={"subject": f"person-{number}", "on_conflict": "allow"},
                )
                results.append((response.status_code, response.json()))
                number += 1

        worker = threading.Thread(target=keep_enrolling)
        worker.start()
        try:
            _poll(
                lambda: sum(status == 201 for status, _ in results) >= 2,
                within_s=60,
                what=f"first enrolments {results[:3]}",
            )
            own_postgres.stop(mode="immediate")
            _poll(lambda: any(status == 503 for status, _ in results), within_s=60, what="a 503 during the outage")
            during_outage = client.get("/readyz").status_code
            own_postgres.start()
            before = len(results)
            _poll(lambda: any(status == 201 for status, _ in results[before:]), within_s=60, what="recovery")
        finally:
            stop.set()
            worker.join(timeout=60)
        ready_after = client.get("/readyz").status_code

    statuses = {status for status, _ in results}
    succeeded = [body["face_id"] for status, body in results if status == 201]
    failures = [body["error"]["code"] for status, body in results if status == 503]
    with psycopg.connect(own_postgres.url.replace("+psycopg", "")) as connection:
        stored = [str(row[0]) for row in connection.execute("SELECT id FROM faces").fetchall()]
        orphans = connection.execute(
            "SELECT count(*) FROM subjects s WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.subject_id = s.id)"
        ).fetchone()
    assert statuses <= {201, 503}
    assert set(failures) == {"DATABASE_UNAVAILABLE"}
    assert during_outage == 503
    assert ready_after == 200
    assert sorted(succeeded) == sorted(set(succeeded))
    assert set(succeeded) <= set(stored)
    assert len(stored) == len(set(stored))
    assert orphans == (0,)


def test_identify_during_an_outage_answers_503_then_recovers_on_the_same_pool(
    own_postgres: EmbeddedPostgres, weights_file: tuple[Path, str], faces_dir: Path, tmp_path: Path
) -> None:
    # Without keys, identify's own search (on the bare psycopg connection) is the first query.
    settings = make_settings(
        postgres=own_postgres,
        weights_file=weights_file,
        data_dir=tmp_path,
        db_connect_timeout_s=1,
        auth_enabled=False,
    )
    photo = (faces_dir / "lfw_al_gore/1.jpg").read_bytes()

    def identify(client: TestClient) -> Any:
        return client.post("/identify", files={"image": ("p.jpg", photo)})

    with running_app(settings) as client:
        assert client.post("/enroll", files={"image": ("p.jpg", photo)}, data={"subject": "Al Gore"}).status_code == 201
        before = identify(client)
        own_postgres.stop(mode="immediate")
        during = identify(client)
        own_postgres.start()
        after: list[Any] = []

        def recovered() -> bool:
            after.append(identify(client))
            return bool(after[-1].status_code == 200)

        _poll(recovered, within_s=60, what="recovery")

    assert before.status_code == 200
    assert during.status_code == 503
    assert during.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert "Retry-After" in during.headers
    assert {response.status_code for response in after} <= {200, 503}
    assert after[-1].json()["faces"][0]["match"]["subject"] == "Al Gore"
