"""The embedded server's password: generated, kept in pgdata readable only by its owner, and asked of
every connection (SCRAM-SHA-256), including the data dirs of older versions, which trusted them all.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
_TRUST = re.compile(r"(?<=\s)trust(?=\s|$)")


def new_password() -> str:
    """256 random bits, URL-safe: the password goes into the database URL as it is."""
    return secrets.token_urlsafe(32)


def read_password(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def write_password(path: Path, *, password: str) -> Path:
    """Write the file atomically, readable and writable by its owner only (0600)."""
    scratch = path.with_name(path.name + ".tmp")
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(password + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.chmod(scratch, 0o600)  # whatever the umask
    os.replace(scratch, path)
    return path


def _is_rule(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")


def trusts_connections(pgdata: Path) -> bool:
    """Whether pg_hba.conf lets some connections in without a password (initdb --auth=trust)."""
    lines = (pgdata / "pg_hba.conf").read_text().splitlines()
    return any(_is_rule(line) and _TRUST.search(line) for line in lines)


def require_passwords(
    connect: Callable[[], psycopg.Connection[TupleRow]], *, pgdata: Path, password_file: Path, password: str
) -> None:
    """Give a trusting server's superuser the password, then make pg_hba.conf ask for it, and reload.

    Safe to run again after a crash at any step: the password file is written first, and the
    server trusts connections until the last step, so the next start finds its way in again.
    """
    logger.warning("the embedded Postgres in %s trusts local connections: setting a generated password", pgdata)
    if read_password(password_file) != password:
        write_password(password_file, password=password)
    with connect() as connection:  # let in by `trust`, whatever the password
        # The SCRAM verifier, computed here: the password itself never reaches the server or its log.
        verifier = connection.pgconn.encrypt_password(password.encode(), SUPERUSER.encode(), b"scram-sha-256")
        connection.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(verifier.decode()))
        )
        _replace_trust_in_hba(pgdata / "pg_hba.conf")
        connection.execute("SELECT pg_reload_conf()")
    logger.info("the embedded Postgres now asks for its password (kept in %s)", password_file)


def _replace_trust_in_hba(hba: Path) -> None:
    lines = hba.read_text().splitlines(keepends=True)
    rewritten = "".join(_TRUST.sub("scram-sha-256", line) if _is_rule(line) else line for line in lines)
    owner = hba.stat()
    scratch = hba.with_name(hba.name + ".facerec-tmp")
    scratch.write_text(rewritten)
    os.chmod(scratch, owner.st_mode & 0o777)
    if os.geteuid() == 0:  # the server's own user must still be able to read it
        os.chown(scratch, owner.st_uid, owner.st_gid)
    os.replace(scratch, hba)
