"""The one-command mode: the service starts its own Postgres, and enrolments survive a restart."""

from __future__ import annotations

from pathlib import Path

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
