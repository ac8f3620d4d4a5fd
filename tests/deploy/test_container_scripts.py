"""The scripts that build and run the deployment for real (scripts/container-tests and its two
helpers), checked without a Docker engine: shell lint, and the stand-in tags against the names
the Dockerfile and the compose file use."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO_ROOT
from tests.deploy import dockerfile
from tests.deploy.test_compose import COMPOSE

SCRIPTS = ["scripts/standin-images", "scripts/build-image", "scripts/container-tests"]
SHELL_FILES = [*SCRIPTS, "scripts/standins/docker-entrypoint.sh"]


@pytest.mark.parametrize("path", SHELL_FILES)
def test_shell_scripts_pass_shellcheck(path: str) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")

    result = subprocess.run([shellcheck, path], cwd=REPO_ROOT, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("path", SHELL_FILES)
def test_shell_scripts_are_executable_and_stop_on_the_first_error(path: str) -> None:
    file = REPO_ROOT / path
    lines = file.read_text().splitlines()

    assert file.stat().st_mode & 0o111
    assert lines[0] in {"#!/usr/bin/env bash", "#!/bin/sh"}
    assert ("set -euo pipefail" if "bash" in lines[0] else "set -eu") in lines


def test_standin_images_are_tagged_with_the_names_the_dockerfile_and_the_compose_file_use() -> None:
    parsed = dockerfile.parse()
    args = parsed.global_args
    bases = {dockerfile.substitute(stage.base, {**args, "DEBIAN_RELEASE": "bookworm"}) for stage in parsed.stages}

    listed = subprocess.run(
        ["bash", "scripts/standin-images", "--list"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()

    python_image, uv_image, db_image = listed
    assert python_image == f"python:{args['PYTHON_VERSION']}-slim-bookworm"
    assert python_image in bases
    assert uv_image == parsed.stage("uv").base
    assert db_image == COMPOSE["services"]["db"]["image"]


def test_every_script_explains_itself_with_help() -> None:
    for path in ["scripts/standin-images", "scripts/build-image"]:
        result = subprocess.run(["bash", path, "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)

        assert path.split("/")[1] in result.stdout
        assert "set -euo" not in result.stdout
