"""The Dockerfile, checked without a Docker engine: lint, the lock it installs from, the command
it runs, its runtime settings, and the build-time weights check run here for real."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from packaging.specifiers import SpecifierSet

from app.cli import main
from app.config import VGGFACE2_WEIGHTS_FILENAME, VGGFACE2_WEIGHTS_SHA256, VGGFACE2_WEIGHTS_URL, Settings
from tests.conftest import REPO_ROOT
from tests.deploy import dockerfile

DOCKERFILE = dockerfile.parse()
LOCK = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
README = (REPO_ROOT / "README.md").read_text()
SETTINGS_VARIABLES = {f"FACEREC_{name.upper()}" for name in Settings.model_fields}
RUNS = DOCKERFILE.instructions("RUN")
# Whatever the torch variant, the image needs the torch the tests run; only its build may differ.
TORCH_CPU_DEPENDENCIES = {"filelock", "fsspec", "jinja2", "networkx", "setuptools", "sympy", "typing-extensions"}


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip(f"{name} is not installed (uv sync installs it with the dev dependencies)")
    return found


def _uv() -> str:
    return os.environ.get("UV") or _tool("uv")


def _locked_versions() -> dict[str, str]:
    return {package["name"]: package["version"] for package in LOCK["package"] if "version" in package}


def _dependents() -> dict[str, set[str]]:
    """For each locked package, the locked packages that depend on it."""
    dependents: dict[str, set[str]] = {}
    for package in LOCK["package"]:
        for dependency in package.get("dependencies", []):
            dependents.setdefault(dependency["name"], set()).add(package["name"])
    return dependents


# --- lint ---------------------------------------------------------------------------------------


def test_hadolint_reports_nothing_and_every_ignore_says_why() -> None:
    hadolint = _tool("hadolint")

    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not list(REPO_ROOT.glob(".hadolint.y*ml")), "rules are ignored inline, next to their reason"
    lines = (REPO_ROOT / "Dockerfile").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"\s*#\s*hadolint\s+ignore=", line):
            reason = lines[number - 1].strip() if number else ""
            assert reason.startswith("#"), f"line {number + 1}: an ignore needs its reason on the line above"
            assert "hadolint" not in reason, f"line {number + 1}: an ignore needs its reason on the line above"


# --- the lock -----------------------------------------------------------------------------------


def test_dependencies_install_from_the_committed_lock_frozen_and_without_dev_packages() -> None:
    lock_runs = [
        run
        for run in RUNS
        if {"uv.lock", "pyproject.toml"} <= {mount.get("source") for mount in dockerfile.run_mounts(run)}
    ]
    uv_commands = [
        command for run in RUNS for command in re.findall(r"uv (?:sync|export|lock|add)\b[^&;|)\"]*", run.arguments)
    ]

    assert len(lock_runs) == 1
    assert "uv sync --frozen --no-dev" in lock_runs[0].arguments
    assert uv_commands
    for command in uv_commands:
        assert command.startswith(("uv sync ", "uv export ")), command
        assert "--frozen" in command, command
        assert "--no-dev" in command, command
    build_env = DOCKERFILE.stage("build").env()
    assert build_env["VIRTUAL_ENV"] == build_env["UV_PROJECT_ENVIRONMENT"] == "/app/.venv"
    assert "UV_PYTHON" not in build_env, "uv pip would install into the base image's Python"
    for run in RUNS:
        assert not re.search(r"uv pip install[^&;]*--(system|python)\b", run.arguments)
        for install in re.findall(r"uv pip install[^&;]*", run.arguments):
            assert "--no-deps" in install, f"line {run.line}: `{install}` would resolve outside the lock"
        assert "--upgrade" not in run.arguments
        assert " -U " not in run.arguments
        assert not re.search(r"(?<!uv )\bpip3? install", run.arguments), f"line {run.line}: pip bypasses the lock"


def test_cpu_variant_replaces_exactly_torch_and_its_cuda_wheels_with_the_locked_versions() -> None:
    (lock_run,) = [run for run in RUNS if "uv export" in run.arguments]
    export = re.search(r"uv export [^)\"]*", lock_run.arguments)
    skip_pattern = re.search(r"grep -oE '([^']+)'", lock_run.arguments)
    assert export is not None
    assert skip_pattern is not None
    versions = _locked_versions()

    exported = subprocess.run(
        [_uv(), *export.group(0).split()[1:]], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    skipped = {match.removesuffix("==") for match in re.findall(skip_pattern.group(1), exported, flags=re.MULTILINE)}

    cuda_only = {name for name in versions if name.startswith(("nvidia-", "cuda-")) or name == "triton"}
    assert skipped == {"torch", "torchvision"} | cuda_only
    assert not skipped & TORCH_CPU_DEPENDENCIES
    dependents = _dependents()
    for package in cuda_only:
        assert dependents.get(package, set()) <= skipped, f"{dependents[package] - skipped} need {package}"
    assert f"\ntorch=={versions['torch']}\n" in f"\n{exported}"
    assert f"\ntorchvision=={versions['torchvision']}\n" in f"\n{exported}"
    install = re.search(r"uv pip install ([^;]*)", lock_run.arguments)
    assert install is not None
    assert "--index-url https://download.pytorch.org/whl/cpu" in install.group(1)
    assert "grep -E '^torch==' <<<\"${locked}\"" in install.group(1)
    assert "grep -E '^torchvision==' <<<\"${locked}\"" in install.group(1)
    assert "--inexact" in lock_run.arguments
    assert '"${no_install[@]}"' in lock_run.arguments


def test_build_context_carries_the_lock_the_tests_use() -> None:
    build = DOCKERFILE.stage("build")

    assert dockerignore_includes("uv.lock")
    assert dockerignore_includes("pyproject.toml")
    assert [copy.arguments for copy in build.all("COPY") if not copy.arguments.startswith("--from")] == [". ."]
    assert build.all("WORKDIR")[0].arguments == "/app"


# --- what the image runs ------------------------------------------------------------------------


def test_image_starts_the_serve_command_the_readme_documents() -> None:
    final = DOCKERFILE.final

    (command,) = final.all("CMD")
    assert command.exec_form() == ["facerec", "serve"]
    assert not final.all("ENTRYPOINT")
    assert PYPROJECT["project"]["scripts"]["facerec"] == "app.cli:main"
    assert main(["serve", "--help"]) == 0
    assert "uv run facerec serve" in README.split("```bash", 1)[1].split("```", 1)[0]
    deployment = README.split("## Deployment", 1)[1].split("\n## ", 1)[0]
    assert "facerec serve" in deployment


def test_runtime_image_listens_on_all_interfaces_and_uses_only_its_built_in_weights() -> None:
    final = DOCKERFILE.final
    env = final.env()

    assert env["FACEREC_HOST"] == "0.0.0.0"
    assert env["FACEREC_ALLOW_DOWNLOAD"] == "false"
    assert env["FACEREC_WEIGHTS_PATH"] == f"/models/{VGGFACE2_WEIGHTS_FILENAME}"
    assert env["FACEREC_WEIGHTS_SHA256"] == "${WEIGHTS_SHA256}"
    assert [expose.arguments for expose in final.all("EXPOSE")] == [env["FACEREC_PORT"]]
    assert "--from=models /models /models" in [copy.arguments for copy in final.all("COPY")]
    assert "/app/.venv/bin" in env["PATH"].split(":")


def test_every_facerec_variable_the_dockerfile_sets_is_a_setting() -> None:
    names = {name for stage in DOCKERFILE.stages for name in stage.env() if name.startswith("FACEREC_")}

    assert names
    assert names <= SETTINGS_VARIABLES, names - SETTINGS_VARIABLES


def test_runtime_stage_runs_as_a_non_root_user_created_in_it() -> None:
    final = DOCKERFILE.final
    keywords = [instruction.keyword for instruction in final.instructions]

    (user,) = final.all("USER")
    uid, _, gid = user.arguments.partition(":")
    assert uid not in {"root", "0"}
    assert gid not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("CMD")
    created = " ".join(run.arguments for run in final.all("RUN"))
    assert f"useradd --system --uid {uid} " in created
    assert f"groupadd --system --gid {gid} " in created


def test_healthcheck_probes_readyz_on_the_configured_port() -> None:
    (healthcheck,) = DOCKERFILE.final.all("HEALTHCHECK")

    command = healthcheck.exec_form()

    assert command[:2] == ["python", "-c"]
    assert "/readyz" in command[2]
    assert "FACEREC_PORT" in command[2]


def test_stages_build_on_the_python_the_project_supports() -> None:
    python_version = DOCKERFILE.global_args["PYTHON_VERSION"]
    stage_names = {stage.name for stage in DOCKERFILE.stages}
    bases = {
        dockerfile.substitute(stage.base, DOCKERFILE.global_args)
        for stage in DOCKERFILE.stages
        if stage.base not in stage_names
    }

    assert f"{python_version}.0" in SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert f"python:{python_version}-slim-{DOCKERFILE.global_args['DEBIAN_RELEASE']}" in bases
    assert all(":" in base and not base.endswith(":latest") for base in bases)


def test_dockerfile_builds_on_an_engine_without_buildx_or_a_frontend_image() -> None:
    lines = (REPO_ROOT / "Dockerfile").read_text().splitlines()

    # A `# syntax=` directive makes BuildKit pull its frontend image first; RUN --mount needs none.
    assert not [line for line in lines if re.match(r"#\s*syntax\s*=", line, flags=re.IGNORECASE)]
    assert not [line for line in lines if re.match(r"#\s*(escape|check)\s*=", line, flags=re.IGNORECASE)]
    assert all(mount.get("type") in {"cache", "bind"} for run in RUNS for mount in dockerfile.run_mounts(run))


# --- the weights --------------------------------------------------------------------------------


def test_weights_come_from_an_image_named_by_a_build_argument_or_a_named_build_context() -> None:
    weights = DOCKERFILE.stage("weights")
    (fetch,) = DOCKERFILE.stage("models").all("RUN")

    assert weights.base == "${WEIGHTS_IMAGE}"
    assert weights.instructions == []
    assert DOCKERFILE.global_args["WEIGHTS_IMAGE"] == "python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}"
    assert {"type": "bind", "from": "weights", "target": "/weights-supplied"} in dockerfile.run_mounts(fetch)
    assert "--build-arg WEIGHTS_IMAGE=" in README
    assert "--build-context weights=" in README


def test_weights_build_arguments_default_to_the_release_asset_the_service_expects() -> None:
    models = DOCKERFILE.stage("models")

    assert DOCKERFILE.global_args["WEIGHTS_URL"] == VGGFACE2_WEIGHTS_URL
    assert DOCKERFILE.global_args["WEIGHTS_SHA256"] == VGGFACE2_WEIGHTS_SHA256
    assert models.env()["FACEREC_WEIGHTS_PATH"] == f"/models/{VGGFACE2_WEIGHTS_FILENAME}"
    (fetch,) = models.all("RUN")
    assert 'facerec models fetch --dest "${source_dir}"' in fetch.arguments
    assert f"/weights-supplied/{VGGFACE2_WEIGHTS_FILENAME}" in fetch.arguments


def _build_time_weights_check(weights: Path, sha256: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The models stage's strict-load command, run here with that stage's FACEREC_* settings."""
    models = DOCKERFILE.stage("models")
    (run,) = models.all("RUN")
    assert run.arguments.rstrip().endswith("&& facerec models prepare")
    env = {key: value for key, value in os.environ.items() if not key.startswith("FACEREC_")}
    env.update(
        {
            name: dockerfile.substitute(value, DOCKERFILE.global_args)
            for name, value in models.env().items()
            if name.startswith("FACEREC_")
        }
    )
    env.update(
        {
            "FACEREC_WEIGHTS_PATH": str(weights),
            "FACEREC_WEIGHTS_SHA256": sha256,
            "FACEREC_TORCH_THREADS": "1",
            "FACEREC_MODEL_DIR": str(tmp_path / "models"),  # /models in the image
        }
    )
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "models", "prepare"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_build_time_weights_check_passes_on_a_file_that_loads_strictly(
    weights_file: tuple[Path, str], tmp_path: Path
) -> None:
    path, sha256 = weights_file

    result = _build_time_weights_check(path, sha256, tmp_path)

    assert result.returncode == 0, result.stderr


def test_build_time_weights_check_fails_on_a_file_with_the_right_hash_that_does_not_fit(tmp_path: Path) -> None:
    wrong = tmp_path / VGGFACE2_WEIGHTS_FILENAME
    torch.save({"conv2d_1a.conv.weight": torch.zeros(1)}, wrong)

    result = _build_time_weights_check(wrong, hashlib.sha256(wrong.read_bytes()).hexdigest(), tmp_path)

    assert result.returncode != 0
    assert "does not fit InceptionResnetV1" in result.stderr


# --- .dockerignore ------------------------------------------------------------------------------


def _dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(exclude?, regex) per line, in the order Docker applies them (the last match wins)."""
    patterns = []
    for raw in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^]]*\])", pattern):
            wildcard = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token)
            regex += wildcard or (token if token.startswith("[") else re.escape(token))
        patterns.append((exclude, re.compile(regex)))
    return patterns


def dockerignore_includes(path: str) -> bool:
    """Whether the build context holds path: a pattern matches a path or any folder above it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    included = True
    for exclude, regex in _dockerignore_patterns():
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            included = not exclude
    return included


@pytest.mark.parametrize(
    "path",
    [
        "tests/conftest.py",
        "tests/deploy/test_dockerfile.py",
        "benchmarks/README.md",
        ".venv/bin/python",
        ".git/HEAD",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/app/main.data.json",
        ".ruff_cache/CACHEDIR.TAG",
        "app/__pycache__/main.cpython-311.pyc",
        "migrations/versions/__pycache__/x.cpython-311.pyc",
        ".env",
        "20180402-114759-vggface2.pt",
        "weights/20180402-114759-vggface2.pt",
        "data/pgdata/PG_VERSION",
        "Dockerfile",
        "docker-compose.yml",
    ],
)
def test_dockerignore_keeps_tests_caches_and_local_data_out(path: str) -> None:
    assert not dockerignore_includes(path)


@pytest.mark.parametrize(
    "path",
    [
        "app/main.py",
        "app/db/session.py",
        "migrations/env.py",
        "alembic.ini",
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "LICENSE",
    ],
)
def test_dockerignore_lets_through_what_the_image_is_built_from(path: str) -> None:
    assert dockerignore_includes(path)
