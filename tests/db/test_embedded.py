"""The one-command mode: the service starts its own Postgres, and enrolments survive a restart."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from app.config import Settings
from tests.conftest import FACES_DIR, requires_faces, running_app


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
    from app.db.embedded import EmbeddedPostgres

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
