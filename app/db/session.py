"""The one database API: a connection pool, readiness, and the unit of work.

`Database.transaction()` yields a Repository on one pooled psycopg connection: every statement
in the block commits together, or rolls back together when the block raises. SQLAlchemy holds
the pool (pre-ping, recycling) and runs the migrations; the statements themselves are plain SQL
on the driver connection (app.db.repository).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import psycopg
from pgvector.psycopg.vector import register_vector_info
from psycopg.types import TypeInfo
from sqlalchemy import exc, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.db.hnsw import HnswOptions
from app.db.migrate import normalise_url, upgrade
from app.db.repository import AuditWriteError, Repository
from app.errors import AuditUnavailableError, DatabaseUnavailableError

logger = logging.getLogger(__name__)

# What API callers are told: the driver's text (host names, ports, user names) is for operators,
# who find it in the log and in /readyz.
NOT_REACHABLE = "The database is not reachable right now; retry shortly."
NOT_READY = "The database is not ready yet; retry shortly."
_LOG_OUTAGE_EVERY_S = 10.0

_DRIVER_PREFIX = re.compile(r"^\([\w.]+\)\s*")  # SQLAlchemy's "(psycopg.OperationalError) "
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@\s]*@")
_PASSWORD_OPTION = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def make_engine(
    url: str, *, pool_size: int, max_overflow: int, connect_timeout_s: float, statement_timeout_s: float
) -> AsyncEngine:
    return create_async_engine(
        normalise_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=connect_timeout_s,
        connect_args={
            "connect_timeout": max(1, round(connect_timeout_s)),
            "application_name": "facerec",
            "options": f"-c statement_timeout={round(statement_timeout_s * 1000)}",
        },
    )


def describe_error(error: BaseException, *, secret: str | None = None) -> str:
    """The error's class and the first line of its text, with any password masked (for logs and /readyz)."""
    lines = str(error).strip().splitlines()
    first = _DRIVER_PREFIX.sub("", lines[0]) if lines else ""
    first = _PASSWORD_OPTION.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", first))
    if secret:
        first = first.replace(secret, "***")
    return f"{type(error).__name__}: {first[:200]}" if first else type(error).__name__


def is_connection_error(error: BaseException) -> bool:
    """True for failures that mean "the database is not reachable", not "the statement is wrong"."""
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or isinstance(error, (exc.OperationalError, exc.InterfaceError))
    return isinstance(
        error, (exc.TimeoutError, ConnectionError, OSError, psycopg.OperationalError, psycopg.InterfaceError)
    )


# How a unit of work ended: committed or refused by the block ("ok"), the database lost ("unavailable"),
# or the audit entry not written ("audit").
Outcome = Literal["ok", "unavailable", "audit"]


class Database:
    """The pool, its units of work, and whether the schema is known to be ready for queries."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        url: str,
        hnsw: HnswOptions | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.engine = engine
        self.url = url
        self.hnsw = hnsw or HnswOptions()
        self._ready = asyncio.Event()
        self.waiting_for = "the first connection"
        self._on_outcome = on_outcome or _ignore  # told how every unit of work ended (the metrics)
        self._password = make_url(normalise_url(url)).password
        self._outage_logged_at = -_LOG_OUTAGE_EVERY_S

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self, *, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        except TimeoutError:
            raise DatabaseUnavailableError(NOT_READY) from None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Repository]:
        """One unit of work: committed when the block succeeds, rolled back when it raises.

        Losing the database (at connect time or mid-transaction, which pre-ping cannot catch)
        becomes DatabaseUnavailableError, and an audit entry that cannot be written becomes
        AuditUnavailableError, so callers answer 503 rather than 500. A connection that failed
        is invalidated, not pooled again.
        """
        if not self.ready:
            self._on_outcome("unavailable")
            raise DatabaseUnavailableError(NOT_READY)
        try:
            async with self.engine.connect() as pooled:
                driver = (await pooled.get_raw_connection()).driver_connection
                if not isinstance(driver, psycopg.AsyncConnection):  # only when the pool was closed under us
                    raise exc.InterfaceError("no psycopg connection", None, ConnectionError())
                try:
                    await _register_vector(driver)
                    yield Repository(driver)
                    await driver.commit()
                except BaseException as error:
                    await _discard(pooled, driver=driver, connection_lost=is_connection_error(error))
                    raise
        except AuditWriteError as error:
            self._on_outcome("audit")
            logger.error("the audit entry could not be written, so the change was rolled back: %s", error)
            raise AuditUnavailableError(
                "The audit log could not be written, so nothing was changed; retry shortly."
            ) from error
        except Exception as error:
            if is_connection_error(error):
                self._on_outcome("unavailable")
                self._log_outage(error)
                raise DatabaseUnavailableError(NOT_REACHABLE) from error
            if not isinstance(error, (DatabaseUnavailableError, AuditUnavailableError)):  # else told already
                self._on_outcome("ok")  # the block's own error (not found, conflict...): the database answered
            raise
        self._on_outcome("ok")

    def _log_outage(self, error: BaseException) -> None:
        # Once every few seconds, not once per request: an outage fails every request.
        now = time.monotonic()
        if now - self._outage_logged_at >= _LOG_OUTAGE_EVERY_S:
            self._outage_logged_at = now
            logger.warning("database unavailable: %s", describe_error(error, secret=self._password))

    async def schema_revision(self) -> str | None:
        """The migration the database is at (a real round trip; raises when it cannot be read)."""
        async with self.engine.connect() as connection:
            revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        return None if revision is None else str(revision)

    async def prepare(self, *, migrate: bool, max_backoff_s: float = 10.0) -> None:
        """Wait for the database with exponential backoff, migrate it if asked, then mark it ready."""
        delay = 0.25
        while True:
            try:
                if migrate:
                    await asyncio.to_thread(upgrade, self.url, hnsw=self.hnsw)
                else:
                    async with self.engine.connect() as connection:
                        await connection.execute(text("SELECT 1"))
            except Exception as error:  # noqa: BLE001 - every failure is retried; it is logged and reported
                self.waiting_for = f"the database ({describe_error(error, secret=self._password)})"
                logger.warning("database not ready, retrying in %.1fs: %s", delay, self.waiting_for)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_backoff_s)
                continue
            self._ready.set()
            logger.info("database ready")
            return


async def _register_vector(connection: psycopg.AsyncConnection[Any]) -> None:
    # Once per connection: numpy arrays then go out as binary vectors, with no text formatting.
    if connection.adapters.types.get("vector") is None:
        register_vector_info(connection, await TypeInfo.fetch(connection, "vector"))
        await connection.commit()


async def _discard(pooled: AsyncConnection, *, driver: psycopg.AsyncConnection[Any], connection_lost: bool) -> None:
    """Roll back the failed unit of work, or drop its connection when that is not possible."""
    if connection_lost:
        await pooled.invalidate()
        return
    try:
        await driver.rollback()
    except Exception:  # noqa: BLE001 - the first error is the one to report
        await pooled.invalidate()


def _ignore(outcome: Outcome) -> None:
    pass
