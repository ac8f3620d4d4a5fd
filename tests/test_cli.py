"""The `facerec` command, run as a real subprocess with FACEREC_* environment variables."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.config import VGGFACE2_WEIGHTS_FILENAME, VGGFACE2_WEIGHTS_URL
from app.db.embedded import EmbeddedPostgres
from tests.conftest import REPO_ROOT
from tests.local_http import closed_port_url, serve_directory

# Generous: a cold start imports torch and loads both models; a hang (e.g. serve binding a
# port instead of refusing to start) still fails in bounded time.
CLI_TIMEOUT_S = 180
COLLECTION = "cli-tests"


def cli_env(tmp_path: Path, **facerec: str) -> dict[str, str]:
    """The parent's environment minus its FACEREC_* settings, plus these (FACEREC_ + upper-cased key)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FACEREC_")}
    env.update(
        {
            "FACEREC_DATA_DIR": str(tmp_path / "data"),
            "FACEREC_MODEL_DIR": str(tmp_path / "models"),
            "FACEREC_DEVICE": "cpu",
            "FACEREC_TORCH_THREADS": "2",
        }
    )
    env.update({f"FACEREC_{key.upper()}": value for key, value in facerec.items()})
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# --- serve --------------------------------------------------------------------------------------


def test_serve_without_weights_and_downloads_off_exits_2_with_one_paragraph_explanation(tmp_path: Path) -> None:
    env = cli_env(tmp_path, allow_download="false")

    result = run_cli("serve", "--port", "0", env=env)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    explanation = last_line(result.stderr)
    assert explanation.startswith("facerec cannot start: the weights file is missing and downloads are off.")
    assert str(tmp_path / "models" / VGGFACE2_WEIGHTS_FILENAME) in explanation
    assert VGGFACE2_WEIGHTS_URL in explanation
    assert "facerec models fetch" in explanation
    assert result.stdout == ""


def test_serve_with_wrong_weights_hash_exits_2_with_mismatch_message(tmp_path: Path) -> None:
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"these are not the weights you are looking for")
    expected_sha256 = hashlib.sha256(b"the real weights").hexdigest()
    env = cli_env(tmp_path, weights_path=str(weights), weights_sha256=expected_sha256, allow_download="false")

    result = run_cli("serve", "--port", "0", env=env)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    explanation = last_line(result.stderr)
    assert f"the weights file {weights} has SHA-256 {hashlib.sha256(weights.read_bytes()).hexdigest()}" in explanation
    assert expected_sha256 in explanation
    assert "FACEREC_WEIGHTS_SHA256" in explanation


# --- models fetch -------------------------------------------------------------------------------


def test_models_fetch_writes_verified_weights_to_dest(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    content = b"stand-in weights for the fetch command\n" * 1000
    (served / "weights.pt").write_bytes(content)
    dest = tmp_path / "dest"

    with serve_directory(served) as base_url:
        env = cli_env(
            tmp_path, weights_url=f"{base_url}/weights.pt", weights_sha256=hashlib.sha256(content).hexdigest()
        )
        result = run_cli("models", "fetch", "--dest", str(dest), env=env)

    assert result.returncode == 0, result.stderr
    target = dest / VGGFACE2_WEIGHTS_FILENAME
    assert f"fetched and verified {target}" in result.stdout
    assert target.read_bytes() == content
    assert sorted(dest.iterdir()) == [target]


def test_models_fetch_from_unreachable_url_exits_2_without_traceback(tmp_path: Path) -> None:
    url = closed_port_url("weights.pt")
    dest = tmp_path / "dest"
    env = cli_env(tmp_path, weights_url=url)

    result = run_cli("models", "fetch", "--dest", str(dest), env=env)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"downloading {url} failed" in last_line(result.stderr)
    assert list(dest.glob("*")) == []


# --- enroll-dir and identify against the test database ------------------------------------------


@dataclass(frozen=True)
class EnrolledGallery:
    """One `enroll-dir` run over a small tree of real photos, and what it printed."""

    root: Path
    env: dict[str, str]
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def enrolled_gallery(
    tmp_path_factory: pytest.TempPathFactory,
    faces_dir: Path,
    postgres: EmbeddedPostgres,
    weights_file: tuple[Path, str],
) -> EnrolledGallery:
    """anthony_hopkins (2 photos + a landscape), eric_clapton (1 photo), enrolled once for the module."""
    tmp = tmp_path_factory.mktemp("cli-gallery")
    root = tmp / "gallery"
    for source, target in [
        ("anthony_hopkins/1.jpg", "anthony_hopkins/1.jpg"),
        ("anthony_hopkins/2.jpg", "anthony_hopkins/2.jpg"),
        ("_noface/1_pilatus800.jpg", "anthony_hopkins/landscape.jpg"),
        ("eric_clapton/2.jpg", "eric_clapton/1.jpg"),
    ]:
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(faces_dir / source, root / target)
    weights_path, weights_sha256 = weights_file
    env = cli_env(
        tmp,
        database_url=postgres.url,
        weights_path=str(weights_path),
        weights_sha256=weights_sha256,
        allow_download="false",
        # The untrained weights make every face alike: the duplicate-identity guard would refuse the second person.
        enroll_conflict_check="false",
    )
    result = run_cli("enroll-dir", str(root), "--collection", COLLECTION, "--concurrency", "2", env=env)
    return EnrolledGallery(root=root, env=env, result=result)


def test_enroll_dir_prints_summary_counting_enrolled_and_rejected_images(enrolled_gallery: EnrolledGallery) -> None:
    result = enrolled_gallery.result

    assert result.returncode == 1, result.stderr  # some images were refused
    assert re.fullmatch(r"3 enrolled, 1 rejected in \d+\.\d\d s \(\d+\.\d images/s\)", result.stdout.splitlines()[0])


def test_enroll_dir_rejects_image_without_face_as_no_face_detected(enrolled_gallery: EnrolledGallery) -> None:
    landscape = enrolled_gallery.root / "anthony_hopkins" / "landscape.jpg"

    rejected = [line.strip() for line in enrolled_gallery.result.stdout.splitlines()[1:] if "rejected " in line]

    assert len(rejected) == 1
    assert rejected[0].startswith(f"rejected {landscape}: NO_FACE_DETECTED - ")


def test_identify_prints_match_for_enrolled_photo(enrolled_gallery: EnrolledGallery) -> None:
    probe = enrolled_gallery.root / "anthony_hopkins" / "2.jpg"

    result = run_cli("identify", str(probe), "--collection", COLLECTION, env=enrolled_gallery.env)

    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    printed = json.loads(line)
    assert printed["face"] == 0
    assert printed["match"] == "anthony_hopkins"
    assert float(printed["best_similarity"]) >= 0.99


# --- keys and purge -----------------------------------------------------------------------------


def test_keys_create_prints_secret_once_and_list_never_shows_it(tmp_path: Path, postgres: EmbeddedPostgres) -> None:
    env = cli_env(tmp_path, database_url=postgres.url)

    created = run_cli("keys", "create", "--name", "cli-camera", "--scope", "identify", "--collection", "staff", env=env)
    listed = run_cli("keys", "list", env=env)

    assert created.returncode == 0, created.stderr
    secret = created.stdout.split("secret (shown once): ", 1)[1].strip()
    assert secret.startswith("frk_")
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if "cli-camera" in row)
    assert secret[:14] in line
    assert "scopes=identify" in line
    assert "collections=staff" in line
    assert secret not in listed.stdout


def test_keys_rotate_and_revoke_change_the_key_state(tmp_path: Path, postgres: EmbeddedPostgres) -> None:
    env = cli_env(tmp_path, database_url=postgres.url)
    created = run_cli("keys", "create", "--name", "cli-rotate", "--scope", "detect", env=env)
    key_id = created.stdout.split()[2]

    rotated = run_cli("keys", "rotate", key_id, env=env)
    new_id = rotated.stdout.split("new key ", 1)[1].split()[0]
    revoked = run_cli("keys", "revoke", new_id, env=env)
    listed = run_cli("keys", "list", env=env).stdout

    assert rotated.returncode == 0, rotated.stderr
    assert revoked.returncode == 0, revoked.stderr
    states = {row.split()[0]: row.split()[2] for row in listed.splitlines()}
    assert states[key_id] == "revoked"
    assert states[new_id] == "revoked"


def test_keys_revoke_unknown_id_exits_1_with_error_code(tmp_path: Path, postgres: EmbeddedPostgres) -> None:
    result = run_cli(
        "keys", "revoke", "00000000-0000-0000-0000-000000000000", env=cli_env(tmp_path, database_url=postgres.url)
    )

    assert result.returncode == 1
    assert last_line(result.stderr).startswith("API_KEY_NOT_FOUND")


def test_purge_reports_what_it_deleted(tmp_path: Path, postgres: EmbeddedPostgres) -> None:
    result = run_cli("purge", env=cli_env(tmp_path, database_url=postgres.url))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deleted ")
    assert "expired faces of" in result.stdout
