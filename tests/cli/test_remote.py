"""The CLI as an HTTP client of a running service (--url, --key, or FACEREC_URL and FACEREC_KEY): the
same JSON as in local mode, the API's errors as the house exit codes, and busy answers retried."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.services.access import Scope
from tests.cli.conftest import LiveService, photo_tree
from tests.local_http import closed_port_url
from tests.test_cli import last_line, run_cli

COLLECTION = "cli-remote"


@dataclass(frozen=True)
class RemoteGallery:
    env: dict[str, str]  # FACEREC_URL and FACEREC_KEY (an admin key) set
    result: subprocess.CompletedProcess[str]
    document: dict[str, Any]
    refused: list[str]  # what the service answered 503 to, in order

    def subject_id(self, name: str) -> str:
        return str(next(item["subject_id"] for item in self.document["items"] if item["subject"] == name))


@pytest.fixture(scope="module")
def remote_gallery(
    live_service: LiveService, remote_env: dict[str, str], faces_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> RemoteGallery:
    """Clapton and Hopkins enrolled through the API, while its first two enrolment answers are 503s."""
    root = photo_tree(
        tmp_path_factory.mktemp("cli-remote") / "gallery",
        faces_dir=faces_dir,
        layout={"clapton/1.jpg": "eric_clapton/2.jpg", "hopkins/1.jpg": "anthony_hopkins/1.jpg"},
        names="folder,name\nclapton,Eric Clapton\nhopkins,Anthony Hopkins\n",
    )
    env = remote_env | {"FACEREC_URL": live_service.base_url, "FACEREC_KEY": live_service.issue_key([Scope.ADMIN])}
    live_service.gate.queue("/enroll", "OVERLOADED", "DEADLINE_EXCEEDED")

    result = run_cli("enroll-dir", str(root), "--collection", COLLECTION, "--concurrency", "1", "--json", env=env)

    return RemoteGallery(
        env=env, result=result, document=json.loads(result.stdout), refused=list(live_service.gate.refused)
    )


def test_enroll_dir_retries_overloaded_and_deadline_answers_and_enrols_every_image(
    remote_gallery: RemoteGallery,
) -> None:
    document = remote_gallery.document

    assert remote_gallery.result.returncode == 0, remote_gallery.result.stderr
    assert remote_gallery.refused == ["OVERLOADED", "DEADLINE_EXCEEDED"]
    assert (document["enrolled"], document["rejected"], document["unavailable"]) == (2, 0, 0)
    assert document["retries"] == 2
    assert sorted(item["attempts"] for item in document["items"]) == [1, 3]


def test_identify_through_the_api_names_the_enrolled_subject(remote_gallery: RemoteGallery, faces_dir: Path) -> None:
    probe = str(faces_dir / "anthony_hopkins/1.jpg")

    result = run_cli("identify", probe, "--collection", COLLECTION, "--json", env=remote_gallery.env)

    assert result.returncode == 0, result.stderr
    [face] = json.loads(result.stdout)["faces"]
    assert face["match"]["subject"] == "Anthony Hopkins"
    assert isinstance(face["match"]["similarity"], float)


def test_verify_through_the_api_compares_with_an_enrolled_subject(
    remote_gallery: RemoteGallery, faces_dir: Path
) -> None:
    probe = str(faces_dir / "anthony_hopkins/2.jpg")

    result = run_cli(
        "verify", probe, "--subject", "Anthony Hopkins", "--collection", COLLECTION, "--json", env=remote_gallery.env
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["subject_id"] == remote_gallery.subject_id("Anthony Hopkins")
    assert isinstance(document["similarity"], float)
    assert document["face_b"] is None


def test_subjects_delete_through_the_api_prints_the_receipt_and_list_no_longer_shows_it(
    remote_gallery: RemoteGallery,
) -> None:
    clapton = remote_gallery.subject_id("Eric Clapton")

    deleted = run_cli("subjects", "delete", clapton, "--json", env=remote_gallery.env)
    listed = run_cli("subjects", "list", "--collection", COLLECTION, "--json", env=remote_gallery.env)

    assert deleted.returncode == 0, deleted.stderr
    receipt = json.loads(deleted.stdout)
    assert (receipt["id"], receipt["name"], receipt["deleted_faces"]) == (clapton, "Eric Clapton", 1)
    assert listed.returncode == 0, listed.stderr
    assert [item["name"] for item in json.loads(listed.stdout)["items"]] == ["Anthony Hopkins"]


def test_subjects_show_of_an_unknown_id_through_the_api_exits_1(remote_gallery: RemoteGallery) -> None:
    result = run_cli("subjects", "show", str(uuid.uuid4()), env=remote_gallery.env)

    assert result.returncode == 1
    assert last_line(result.stderr).startswith("SUBJECT_NOT_FOUND: No subject with id")


def test_keys_create_rotate_and_revoke_through_the_api_with_url_and_key_flags(
    live_service: LiveService, remote_env: dict[str, str]
) -> None:
    target = ["--url", live_service.base_url, "--key", live_service.issue_key([Scope.ADMIN])]

    created = run_cli("keys", "create", "--name", "cli-remote", "--scope", "detect", "--json", *target, env=remote_env)
    old_id = json.loads(created.stdout)["id"]
    rotated = run_cli("keys", "rotate", old_id, "--json", *target, env=remote_env)
    new = json.loads(rotated.stdout)
    revoked = run_cli("keys", "revoke", new["id"], "--json", *target, env=remote_env)

    assert created.returncode == rotated.returncode == revoked.returncode == 0, revoked.stderr
    assert new["id"] != old_id
    assert new["key"].startswith("frk_")
    assert new["scopes"] == ["detect"]
    assert json.loads(revoked.stdout)["revoked_at"] is not None


def test_a_wrong_key_exits_2_with_the_apis_unauthenticated_message(
    live_service: LiveService, remote_env: dict[str, str]
) -> None:
    env = remote_env | {"FACEREC_URL": live_service.base_url, "FACEREC_KEY": "frk_0123456789_not-a-key"}

    result = run_cli("keys", "list", env=env)

    assert result.returncode == 2
    assert last_line(result.stderr) == "UNAUTHENTICATED: The API key is unknown or revoked."
    assert result.stdout == ""


def test_a_service_that_cannot_be_reached_exits_3_after_the_retries(remote_env: dict[str, str]) -> None:
    env = remote_env | {"FACEREC_URL": closed_port_url("").rstrip("/"), "FACEREC_KEY": "frk_unused"}

    result = run_cli("subjects", "list", "--json", env=env)

    assert result.returncode == 3
    assert json.loads(result.stdout)["error"]["code"] == "SERVICE_UNREACHABLE"
    assert last_line(result.stderr).startswith("SERVICE_UNREACHABLE: Cannot reach http://127.0.0.1:")
