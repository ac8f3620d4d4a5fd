"""The CLI on this machine's database and model, run as scripts run it (real subprocesses): one JSON
document on stdout with --json, numbers as numbers and unknown as null, and the house exit codes."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.db.embedded import EmbeddedPostgres
from tests.cli.conftest import photo_tree
from tests.local_http import closed_port_url
from tests.test_cli import last_line, run_cli

COLLECTION = "cli-json"
GALLERY = {
    "anthony_hopkins/1.jpg": "anthony_hopkins/1.jpg",
    "anthony_hopkins/2.jpg": "anthony_hopkins/2.jpg",
    "anthony_hopkins/landscape.jpg": "_noface/1_pilatus800.jpg",
    "eric_clapton/1.jpg": "eric_clapton/2.jpg",
}
TABLES = ("collections", "subjects", "faces", "audit_log", "idempotency_keys")


def rows(url: str, *, query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        return connection.execute(query, parameters).fetchall()


def row_counts(url: str) -> dict[str, int]:
    return {table: rows(url, query=f"SELECT count(*) FROM {table}")[0][0] for table in TABLES}


def closed_database_url() -> str:
    return closed_port_url("facerec").replace("http://", "postgresql://facerec@")


@dataclass(frozen=True)
class Enrolled:
    root: Path
    result: subprocess.CompletedProcess[str]
    document: dict[str, Any]


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path, local_env: dict[str, str]) -> Enrolled:
    """Hopkins (2 photos and a landscape, named by names.csv) and Clapton (1 photo, named by his folder)."""
    root = photo_tree(
        tmp_path_factory.mktemp("cli-json") / "gallery",
        faces_dir=faces_dir,
        layout=GALLERY,
        names="folder,name\nanthony_hopkins,Anthony Hopkins\n",
    )
    result = run_cli("enroll-dir", str(root), "--collection", COLLECTION, "--concurrency", "2", "--json", env=local_env)
    return Enrolled(root=root, result=result, document=json.loads(result.stdout))


def test_enroll_dir_json_counts_each_outcome_and_exits_1_when_an_image_is_rejected(enrolled: Enrolled) -> None:
    document = enrolled.document

    assert enrolled.result.returncode == 1, enrolled.result.stderr
    assert (document["images"], document["enrolled"], document["rejected"]) == (4, 3, 1)
    assert document["rejected_by_code"] == {"NO_FACE_DETECTED": 1}
    assert isinstance(document["seconds"], float)
    assert isinstance(document["images_per_s"], float)


def test_enroll_dir_json_gives_each_image_its_status_and_null_code_when_enrolled(enrolled: Enrolled) -> None:
    items = {Path(item["image"]).relative_to(enrolled.root).as_posix(): item for item in enrolled.document["items"]}

    assert set(items) == set(GALLERY)
    assert items["anthony_hopkins/landscape.jpg"]["status"] == "rejected"
    assert items["anthony_hopkins/landscape.jpg"]["code"] == "NO_FACE_DETECTED"
    assert items["anthony_hopkins/landscape.jpg"]["face_id"] is None
    assert items["eric_clapton/1.jpg"]["status"] == "enrolled"
    assert items["eric_clapton/1.jpg"]["code"] is None
    uuid.UUID(items["eric_clapton/1.jpg"]["face_id"])


def test_enroll_dir_enrols_under_names_from_names_csv_else_the_folder_name(
    enrolled: Enrolled, postgres: EmbeddedPostgres
) -> None:
    names = rows(
        postgres.url,
        query="SELECT s.name FROM subjects s JOIN collections c ON c.id = s.collection_id WHERE c.name = %s",
        parameters=(COLLECTION,),
    )

    assert sorted(name for (name,) in names) == ["Anthony Hopkins", "eric_clapton"]
    assert {item["subject"] for item in enrolled.document["items"]} == {"Anthony Hopkins", "eric_clapton"}


def test_enroll_dir_of_a_missing_folder_exits_2_with_a_json_error(tmp_path: Path, local_env: dict[str, str]) -> None:
    result = run_cli("enroll-dir", str(tmp_path / "absent"), "--json", env=local_env)

    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["code"] == "USAGE_ERROR"
    assert last_line(result.stderr) == f"facerec enroll-dir: {tmp_path / 'absent'} is not a directory"


def test_enroll_dir_dry_run_reports_what_would_be_refused_and_writes_nothing(
    tmp_path: Path, faces_dir: Path, local_env: dict[str, str], postgres: EmbeddedPostgres
) -> None:
    root = photo_tree(
        tmp_path / "gallery",
        faces_dir=faces_dir,
        layout={"kit/1.jpg": "kit_harington/1.jpg", "kit/rocket.jpg": "_noface/4_rocket.jpg"},
    )
    before = row_counts(postgres.url)

    result = run_cli("enroll-dir", str(root), "--collection", "cli-dry-run", "--dry-run", "--json", env=local_env)

    assert row_counts(postgres.url) == before
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["dry_run"] is True
    assert (document["would_enrol"], document["rejected"], document["enrolled"]) == (1, 1, 0)
    statuses = {Path(item["image"]).name: (item["status"], item["code"]) for item in document["items"]}
    assert statuses == {"1.jpg": ("would_enrol", None), "rocket.jpg": ("rejected", "NO_FACE_DETECTED")}


def test_identify_json_gives_numbers_and_null_for_an_unknown_face(
    faces_dir: Path, local_env: dict[str, str], postgres: EmbeddedPostgres
) -> None:
    empty = f"cli-empty-{uuid.uuid4().hex[:8]}"
    rows(postgres.url, query="INSERT INTO collections (name) VALUES (%s) RETURNING id", parameters=(empty,))

    result = run_cli(
        "identify", str(faces_dir / "anthony_hopkins/1.jpg"), "--collection", empty, "--json", env=local_env
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["collection"] == empty
    assert isinstance(document["threshold"], float)
    [face] = document["faces"]
    assert face["match"] is None
    assert face["candidates"] == []
    assert all(isinstance(face["box"][corner], float) for corner in ("x1", "y1", "x2", "y2"))
    assert isinstance(face["detection_probability"], float)


def test_verify_json_compares_two_photos_with_a_numeric_similarity(faces_dir: Path, local_env: dict[str, str]) -> None:
    photos = [str(faces_dir / "anthony_hopkins" / name) for name in ("1.jpg", "2.jpg")]

    result = run_cli("verify", *photos, "--json", env=local_env)

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document["similarity"], float)
    assert isinstance(document["threshold"], float)
    assert isinstance(document["same_person"], bool)
    assert document["face_b"] is not None
    assert document["subject_id"] is None


def test_verify_without_a_second_photo_or_subject_exits_2(faces_dir: Path, local_env: dict[str, str]) -> None:
    result = run_cli("verify", str(faces_dir / "anthony_hopkins/1.jpg"), env=local_env)

    assert result.returncode == 2
    assert "give a second photo B or --subject NAME" in last_line(result.stderr)


def test_detect_json_gives_each_face_its_box_probability_and_quality_without_a_database(
    faces_dir: Path, local_env: dict[str, str]
) -> None:
    env = local_env | {"FACEREC_DATABASE_URL": closed_database_url()}

    result = run_cli("detect", str(faces_dir / "_groups/3_obama_and_biden.jpg"), "--json", env=env)

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document["width"], int)
    assert len(document["faces"]) >= 2
    for face in document["faces"]:
        assert isinstance(face["detection_probability"], float)
        assert isinstance(face["quality"]["sharpness"], float)
        assert isinstance(face["quality"]["passes"], bool)


def test_keys_create_and_list_json_show_the_secret_once(local_env: dict[str, str]) -> None:
    created = run_cli("keys", "create", "--name", "cli-json-key", "--scope", "identify", "--json", env=local_env)
    listed = run_cli("keys", "list", "--json", env=local_env)

    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert issued["key"].startswith("frk_")
    assert issued["scopes"] == ["identify"]
    assert issued["revoked_at"] is None
    assert listed.returncode == 0, listed.stderr
    [record] = [item for item in json.loads(listed.stdout)["items"] if item["id"] == issued["id"]]
    assert record["prefix"] == issued["prefix"]
    assert issued["key"] not in listed.stdout


def test_subjects_list_json_filters_by_name_and_show_lists_the_faces(
    enrolled: Enrolled, local_env: dict[str, str]
) -> None:
    listed = run_cli("subjects", "list", "--collection", COLLECTION, "--q", "Hopkins", "--json", env=local_env)
    page = json.loads(listed.stdout)
    [hopkins] = page["items"]
    shown = run_cli("subjects", "show", hopkins["id"], "--json", env=local_env)

    assert listed.returncode == 0, listed.stderr
    assert (page["total"], page["limit"], page["offset"]) == (1, 100, 0)
    assert (hopkins["name"], hopkins["face_count"]) == ("Anthony Hopkins", 2)
    assert shown.returncode == 0, shown.stderr
    subject = json.loads(shown.stdout)
    assert subject["id"] == hopkins["id"]
    assert len(subject["faces"]) == 2
    assert all(isinstance(face["detection_probability"], float) for face in subject["faces"])


def test_subjects_show_of_an_unknown_id_exits_1_with_the_error_code(local_env: dict[str, str]) -> None:
    result = run_cli("subjects", "show", str(uuid.uuid4()), "--json", env=local_env)

    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"] == "SUBJECT_NOT_FOUND"
    assert last_line(result.stderr).startswith("SUBJECT_NOT_FOUND: No subject with id")


def test_a_database_that_cannot_be_reached_exits_3_after_the_configured_wait(local_env: dict[str, str]) -> None:
    env = local_env | {
        "FACEREC_DATABASE_URL": closed_database_url(),
        "FACEREC_DB_CONNECT_TIMEOUT_S": "1",
        "FACEREC_DB_WAIT_S": "1.5",
    }

    result = run_cli("keys", "list", "--json", env=env)  # the wait is 1.5 s; run_cli's timeout stops a hang

    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert "not ready within 1.5 s" in last_line(result.stderr)
