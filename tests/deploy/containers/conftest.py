"""The deployment for real: the image built from the Dockerfile and the stack docker-compose.yml
runs, driven through Docker. scripts/container-tests builds the image, sets the variables below
and runs these tests; a plain `uv run pytest` skips them, saying so."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import requires_faces
from tests.deploy.containers.stack import Stack, free_port_range, write_env_file

HERE = Path(__file__).resolve().parent
ENABLED = os.environ.get("FACEREC_CONTAINER_TESTS") == "1"
SKIP_REASON = (
    "the container tests build and run the image with Docker and docker compose: run scripts/container-tests "
    "(it installs both where missing, builds the image and sets FACEREC_CONTAINER_TESTS=1)"
)
# The order a deployment lives in: its image, the stack, faults, then backup and restore, which
# replaces the database volume.
MODULE_ORDER = ("test_image", "test_stack", "test_database_faults", "test_replica_crash", "test_backup")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(MODULE_ORDER)}
    mine = [item for item in items if item.path.parent == HERE]
    for item in mine:
        if not ENABLED:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))
        elif item.path.stem != "test_image":
            item.add_marker(requires_faces)
    others = [item for item in items if item.path.parent != HERE]
    items[:] = others + sorted(mine, key=lambda item: rank.get(item.path.stem, len(rank)))


@dataclass(frozen=True)
class Report:
    """Figures and timelines for scripts/container-tests to print at the end of the run."""

    path: Path

    def line(self, text: str = "") -> None:
        with self.path.open("a") as report:
            report.write(text + "\n")


@dataclass(frozen=True)
class Replica:
    container: str
    url: str


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    path = os.environ.get("FACEREC_CONTAINER_REPORT")
    return Report(Path(path) if path else tmp_path_factory.mktemp("report") / "report.txt")


@pytest.fixture(scope="session")
def image() -> str:
    return os.environ["FACEREC_CONTAINER_IMAGE"]


@pytest.fixture(scope="session")
def stack(image: str, report: Report, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """db and one app replica, up and healthy, from docker-compose.yml and a generated .env."""
    workdir = tmp_path_factory.mktemp("compose")
    env_file = workdir / ".env"
    write_env_file(path=env_file, image=image, password=secrets.token_hex(24), first_port=free_port_range(2))
    running = Stack(project=os.environ["FACEREC_COMPOSE_PROJECT"], image=image, env_file=env_file, workdir=workdir)
    try:
        seconds = running.up(replicas=1)
        report.line(f"compose up -d --wait (db and one app replica healthy): {seconds:.1f} s")
        yield running
    finally:
        running.down()


@pytest.fixture(scope="session")
def admin_key(stack: Stack) -> str:
    """A key made the README's way: `docker compose exec app facerec keys create ...`."""
    output = stack.compose("exec", "-T", "app", "facerec", "keys", "create", "--name", "t", "--scope", "admin")
    match = re.search(r"^secret \(shown once\): (\S+)$", output, flags=re.MULTILINE)
    assert match is not None, output
    return match.group(1)


@pytest.fixture
def replicas(stack: Stack, report: Report) -> list[Replica]:
    """Two app replicas, both healthy, each on its own published loopback port."""
    seconds = stack.up(replicas=2)
    containers = stack.containers("app")
    assert len(containers) == 2, containers
    if seconds > 5:  # a replica was started, not only found running
        report.line(f"compose up -d --wait --scale app=2: {seconds:.1f} s")
    return [Replica(container=name, url=stack.base_url(name)) for name in containers]


def unique(prefix: str) -> str:
    """A collection or subject name of its own, so tests never see each other's faces."""
    return f"{prefix}-{secrets.token_hex(4)}"
