"""The compose stack the container tests drive: docker and `docker compose` as subprocesses, on the
project's own docker-compose.yml, with this run's project name and generated env file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import REPO_ROOT

# /usr/bin/docker (Debian's 20.10 client) builds with BuildKit without buildx; scripts/container-tests
# sets DOCKER, DOCKER_CONFIG (the compose plugin) and a PATH where `docker` is that client.
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
APP_PORT = 8000
# The replicas load their models in ~15 s; on two shared cores under load it takes longer.
HEALTHY_DEADLINE_S = 240.0
TEST_LABEL = "facerec-container-tests"


class CommandError(AssertionError):
    """A docker or compose command exited non-zero; the message holds its output."""


def free_port_range(count: int) -> int:
    """The first of `count` consecutive loopback ports that are free now."""
    for first in range(20000, 60000, 97):
        sockets: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(probe)
                probe.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise RuntimeError(f"no {count} consecutive free loopback ports")


@dataclass(frozen=True)
class Stack:
    """One compose project: its name, the app image it runs and the env file it reads."""

    project: str
    image: str
    env_file: Path
    workdir: Path

    def environment(self) -> dict[str, str]:
        """What every command runs with, README commands included: they name no file or project."""
        env = dict(os.environ)
        env.update(
            COMPOSE_PROJECT_NAME=self.project,
            COMPOSE_FILE=str(COMPOSE_FILE),
            COMPOSE_ENV_FILES=str(self.env_file),
            COMPOSE_PROGRESS="plain",
        )
        return env

    def env_value(self, name: str) -> str:
        for line in self.env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == name:
                return value
        raise KeyError(name)

    def run(
        self, args: Sequence[str], *, timeout: float = 300.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(args),
            cwd=self.workdir,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise CommandError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def docker(self, *args: str, timeout: float = 300.0, check: bool = True) -> str:
        return self.run([DOCKER, *args], timeout=timeout, check=check).stdout.strip()

    def compose(self, *args: str, timeout: float = 600.0) -> str:
        return self.run([DOCKER, "compose", *args], timeout=timeout).stdout.strip()

    def shell(self, command: str, *, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        """A README command line, run by bash in the work folder as an operator would type it."""
        return self.run(["bash", "-euo", "pipefail", "-c", command], timeout=timeout)

    def containers(self, service: str) -> list[str]:
        """The service's container names, by replica number."""
        names = self.docker(
            "ps",
            "--all",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
            "--format",
            '{{.Label "com.docker.compose.container-number"}} {{.Names}}',
        ).splitlines()
        return [name for _, name in sorted((int(line.split()[0]), line.split()[1]) for line in names)]

    def inspect(self, container: str) -> dict[str, Any]:
        (found,) = json.loads(self.docker("inspect", container))
        assert isinstance(found, dict)
        return found

    def health(self, container: str) -> str:
        state = self.inspect(container)["State"]
        health = state.get("Health")
        return str(health["Status"]) if health else str(state["Status"])

    def wait_healthy(self, containers: Sequence[str], *, deadline_s: float = HEALTHY_DEADLINE_S) -> float:
        """Poll until every container's health is `healthy`; returns the seconds it took."""
        start = time.monotonic()
        while True:
            states = {container: self.health(container) for container in containers}
            if all(state == "healthy" for state in states.values()):
                return time.monotonic() - start
            if time.monotonic() - start > deadline_s:
                logs = {
                    container: self.docker("logs", "--tail", "30", container, check=False) for container in containers
                }
                raise AssertionError(f"not healthy within {deadline_s:.0f} s: {states}\n{logs}")
            time.sleep(1.0)

    def base_url(self, container: str) -> str:
        """The app replica's published loopback address."""
        published = self.docker("port", container, f"{APP_PORT}/tcp").splitlines()[0]
        return f"http://{published}"

    def up(self, *, replicas: int, services: Sequence[str] = ()) -> float:
        """`docker compose up -d --wait` at `replicas` app replicas; returns the seconds it took."""
        start = time.monotonic()
        self.compose(
            "up", "--detach", "--no-build", "--wait", "--wait-timeout", str(int(HEALTHY_DEADLINE_S)),
            "--scale", f"app={replicas}", *services,
        )  # fmt: skip
        return time.monotonic() - start

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10")


def write_env_file(*, path: Path, image: str, password: str, first_port: int) -> None:
    """.env.example with a password, a two-port loopback range, this run's image and no rate limit."""
    lines = []
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        if line.startswith("POSTGRES_PASSWORD="):
            line = f"POSTGRES_PASSWORD={password}"
        elif line.startswith("APP_PORTS="):
            line = f"APP_PORTS=127.0.0.1:{first_port}-{first_port + 1}"
        elif line.startswith(("APP_IMAGE=", "# APP_IMAGE=")):
            line = f"APP_IMAGE={image}"
        elif line.startswith("FACEREC_RATE_LIMIT_"):
            # The load loops call as fast as answers come, far past a per-key limit; these tests
            # are about faults, and the limits have their own tests against a real database.
            line = line.split("=")[0] + "=0"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    assert f"APP_IMAGE={image}" in lines, ".env.example has no APP_IMAGE line to fill in"
