"""The one-command mode: the service starts its own Postgres, and enrolments survive a restart."""

from __future__ import annotations

import logging
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.config import Settings
from app.db.embedded import EmbeddedPostgres
from tests.conftest import FACES_DIR, requires_faces, running_app


def _poll(check: Callable[[], bool], *, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _embedded_settings(weights_file: tuple[Path, str], data_dir: Path) -> Settings:
    path, sha256 = weights_file
    return Settings(
        _env_file=None,
        database_url=None,
        data_dir=data_dir,
        weights_path=path,
        weights_sha256=sha256,
        allow_download=False,
        torch_threads=2,
    )


@requires_faces
def test_enrolments_survive_a_restart_of_the_embedded_database(weights_file: tuple[Path, str], tmp_path: Path) -> None:
    settings = _embedded_settings(weights_file, tmp_path / "data")
    photo = (FACES_DIR / "lfw_al_gore/1.jpg").read_bytes()
    with running_app(settings) as first:
        enrolled = first.post("/enroll", files={"image": ("a.jpg", photo)}, data={"subject": "Al Gore"}).json()

    with running_app(settings) as second:
        subject = second.get(f"/subjects/{enrolled['subject_id']}")
        found = second.post("/identify", files={"image": ("a.jpg", photo)}).json()

    assert subject.status_code == 200
    assert subject.json()["name"] == "Al Gore"
    assert found["faces"][0]["match"]["subject_id"] == enrolled["subject_id"]


def test_embedded_database_is_stopped_at_shutdown(weights_file: tuple[Path, str], tmp_path: Path) -> None:
    settings = _embedded_settings(weights_file, tmp_path / "data")
    with running_app(settings) as client:
        assert client.get("/readyz").status_code == 200

    assert not EmbeddedPostgres(settings.embedded_pgdata).is_running()


def test_first_start_on_the_embedded_database_prints_one_working_admin_key_once(
    weights_file: tuple[Path, str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = _embedded_settings(weights_file, tmp_path / "data")
    with running_app(settings) as client:
        deadline = time.monotonic() + 30
        while "frk_" not in (printed := capfd.readouterr().err):
            assert time.monotonic() < deadline, "no first-run key was printed"
            time.sleep(0.1)
        token = re.search(r"frk_[0-9a-f]{10}_[A-Za-z0-9_-]{43}", printed)
        assert token is not None
        works = client.get("/keys", headers={"Authorization": f"Bearer {token.group(0)}"})

    with running_app(settings):
        printed_again = capfd.readouterr().err

    assert works.status_code == 200
    assert "frk_" not in printed_again


def _connect_without_password(server: EmbeddedPostgres, *, password: str | None = None) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host="127.0.0.1", port=server.port, user="postgres", dbname="facerec", password=password, connect_timeout=5
    )


@pytest.fixture
def no_client_passwords(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No password from the environment or a ~/.pgpass: only what a test passes is sent."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-such-pgpass"))


@pytest.mark.usefixtures("no_client_passwords")
@pytest.mark.parametrize("password", [None, "not-the-password"], ids=["no-password", "wrong-password"])
def test_embedded_postgres_refuses_connections_without_its_password(
    postgres: EmbeddedPostgres, password: str | None
) -> None:
    with pytest.raises(psycopg.OperationalError, match="password"):
        _connect_without_password(postgres, password=password)

    with psycopg.connect(postgres.url.replace("+psycopg", "")) as connection:
        assert connection.execute("SELECT current_user").fetchone() == ("postgres",)


def test_embedded_password_is_generated_and_kept_in_pgdata_for_its_owner_only(postgres: EmbeddedPostgres) -> None:
    mode = stat.S_IMODE(postgres.password_file.stat().st_mode)
    stored = postgres.password_file.read_text().strip()

    assert mode == 0o600
    assert postgres.password_file.parent == postgres.pgdata
    assert stored == postgres.password
    assert len(stored) >= 40  # 256 random bits, URL-safe
    assert f"postgres:{stored}@" in postgres.url
    assert EmbeddedPostgres(postgres.pgdata).password == stored  # a second process reads the same one


def _make_it_trust_local_connections(server: EmbeddedPostgres) -> None:
    """Turn a data dir into one as facerec made them before passwords: initdb --auth=trust, no password file."""
    with psycopg.connect(server.url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute("ALTER ROLE postgres PASSWORD NULL")
    server.stop()
    hba = server.pgdata / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    server.password_file.unlink()


@pytest.mark.usefixtures("no_client_passwords")
def test_data_dir_that_trusted_local_connections_gets_a_password_on_its_next_start(tmp_path: Path) -> None:
    old = EmbeddedPostgres(tmp_path / "pgdata")
    old.start()
    with psycopg.connect(old.url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute("CREATE TABLE kept (value text)")
        connection.execute("INSERT INTO kept VALUES ('from before the upgrade')")
    _make_it_trust_local_connections(old)

    upgraded = EmbeddedPostgres(tmp_path / "pgdata")
    upgraded.start()
    try:
        with psycopg.connect(upgraded.url.replace("+psycopg", "")) as connection:
            kept = connection.execute("SELECT value FROM kept").fetchall()
        with pytest.raises(psycopg.OperationalError, match="password"):
            _connect_without_password(upgraded)
        hba = (upgraded.pgdata / "pg_hba.conf").read_text()
    finally:
        upgraded.stop()

    assert kept == [("from before the upgrade",)]
    assert stat.S_IMODE(upgraded.password_file.stat().st_mode) == 0o600
    assert upgraded.password != old.password
    assert " trust" not in hba
    assert "scram-sha-256" in hba


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


@requires_faces
def test_service_restarts_its_embedded_postgres_after_a_kill_9_and_loses_no_success(
    weights_file: tuple[Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _embedded_settings(weights_file, tmp_path / "data")
    photos = [(FACES_DIR / name).read_bytes() for name in ("lfw_al_gore/1.jpg", "amy_adams/1.jpg")]
    enrolments: list[tuple[int, dict[str, Any]]] = []
    identifies: list[tuple[int, dict[str, Any]]] = []
    readyz: list[dict[str, Any]] = []
    stop = threading.Event()
    caplog.set_level(logging.WARNING, logger="app.db.supervisor")

    with running_app(settings) as client:

        def keep_calling() -> None:
            number = 0
            while not stop.is_set():
                photo = photos[number % len(photos)]
                # Ever new names for the same photos: the duplicate-identity guard is not what is tested.
                form = {"subject": f"person-{number}", "on_conflict": "allow"}
                enrolled = client.post("/enroll", files={"image": ("p.jpg", photo)}, data=form)
                enrolments.append((enrolled.status_code, enrolled.json()))
                identified = client.post("/identify", files={"image": ("p.jpg", photo)})
                identifies.append((identified.status_code, identified.json()))
                number += 1

        worker = threading.Thread(target=keep_calling)
        worker.start()
        try:
            _poll(lambda: sum(status == 201 for status, _ in enrolments) >= 2, within_s=60, what="first enrolments")
            os.kill(_postmaster_pid(settings.embedded_pgdata), signal.SIGKILL)
            killed_at = (len(enrolments), len(identifies))

            def ready_again() -> bool:
                answer = client.get("/readyz")
                readyz.append(answer.json())
                return answer.status_code == 200 and readyz[-1]["checks"]["database"] == "ok"

            _poll(lambda: not ready_again(), within_s=30, what="/readyz to notice the outage")
            _poll(ready_again, within_s=90, what="/readyz to recover")
            _poll(
                lambda: (
                    any(status == 201 for status, _ in enrolments[killed_at[0] + 1 :])
                    and any(status == 200 for status, _ in identifies[killed_at[1] + 1 :])
                ),
                within_s=60,
                what="enrol and identify to work again",
            )
        finally:
            stop.set()
            worker.join(timeout=60)
        database_url = client.app_state["services"].database.url
        with psycopg.connect(database_url.replace("+psycopg", "")) as connection:
            stored = {str(row[0]) for row in connection.execute("SELECT id FROM faces").fetchall()}

    succeeded = [body["face_id"] for status, body in enrolments if status == 201]
    failures = {body["error"]["code"] for status, body in enrolments + identifies if status >= 400}
    outage_reports = [answer["checks"]["database"] for answer in readyz if answer["status"] != "ready"]
    assert {status for status, _ in enrolments} <= {201, 503}
    assert {status for status, _ in identifies} <= {200, 503}
    assert failures <= {"DATABASE_UNAVAILABLE"}
    assert set(succeeded) <= stored  # every enrolment that answered 201 is there
    assert len(succeeded) == len(set(succeeded))
    assert any("the embedded Postgres stopped; restart" in report for report in outage_reports), outage_reports
    assert "is not running: restarting it" in caplog.text
    assert "is running again" in caplog.text
