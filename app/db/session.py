"""Database engines, sessions and schema migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.db.hnsw import HnswOptions, apply_if_empty
from app.errors import DatabaseUnavailableError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# An arbitrary constant: every facerec process takes this Postgres advisory lock around
# `alembic upgrade`, so replicas starting together migrate one at a time.
MIGRATION_LOCK_KEY = 0x66616365726563


def normalise_url(url: str) -> str:
    """Accept plain postgres:// and postgresql:// URLs and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


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


def is_connection_error(error: BaseException) -> bool:
    """True for failures that mean "the database is not reachable", not "the statement is wrong"."""
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or isinstance(error, (exc.OperationalError, exc.InterfaceError))
    return isinstance(
        error, (exc.TimeoutError, ConnectionError, OSError, psycopg.OperationalError, psycopg.InterfaceError)
    )


class Database:
    """The engine, its sessions, and whether the schema is known to be ready for queries."""

    def __init__(self, engine: AsyncEngine, *, url: str, hnsw: HnswOptions | None = None) -> None:
        self.engine = engine
        self.url = url
        self.hnsw = hnsw or HnswOptions()
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._ready = asyncio.Event()
        self.waiting_for = "the first connection"

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self, *, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        except TimeoutError:
            raise DatabaseUnavailableError(f"The database is not ready: waiting for {self.waiting_for}.") from None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block succeeds, rolled back when it raises.

        Losing the database (at connect time or mid-transaction, which pre-ping cannot catch)
        becomes DatabaseUnavailableError, so callers answer 503 rather than 500.
        """
        self._require_ready()
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except Exception as error:
            if is_connection_error(error):
                raise DatabaseUnavailableError("The database is unavailable; retry shortly.") from error
            raise

    @asynccontextmanager
    async def driver_transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Like transaction(), on the pooled connection's bare psycopg connection, for the hot path.

        The transaction begins with the first statement; it is committed when the block succeeds
        and rolled back when it raises. A connection that failed is invalidated, not pooled again.
        """
        self._require_ready()
        try:
            async with self.engine.connect() as pooled:
                driver = (await pooled.get_raw_connection()).driver_connection
                if not isinstance(driver, psycopg.AsyncConnection):  # only when the pool was closed under us
                    raise exc.InterfaceError("no psycopg connection", None, ConnectionError())
                try:
                    yield driver
                    await driver.commit()
                except BaseException as error:
                    if is_connection_error(error):
                        await pooled.invalidate()
                    else:
                        try:
                            await driver.rollback()
                        except Exception:  # noqa: BLE001 - the first error is the one to report
                            await pooled.invalidate()
                    raise
        except Exception as error:
            if is_connection_error(error):
                raise DatabaseUnavailableError("The database is unavailable; retry shortly.") from error
            raise

    def _require_ready(self) -> None:
        if not self.ready:
            raise DatabaseUnavailableError(f"The database is not ready yet: waiting for {self.waiting_for}.")

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
                self.waiting_for = f"the database ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
                logger.warning("database not ready, retrying in %.1fs: %s", delay, self.waiting_for)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_backoff_s)
                continue
            self._ready.set()
            logger.info("database ready")
            return


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("postgresql+psycopg://unused")).get_current_head()
    if head is None:
        raise RuntimeError(f"no alembic revisions under {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str, *, revision: str = "head", hnsw: HnswOptions | None = None) -> None:
    """Migrate the schema, holding an advisory lock so that concurrent starters take turns.

    At head, the HNSW index is rebuilt with `hnsw` if it differs and the gallery is empty.
    """
    engine = create_engine(normalise_url(url), poolclass=None)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                config = alembic_config(url)
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if revision == "head":
                    apply_if_empty(connection, hnsw or HnswOptions())
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                connection.commit()
    finally:
        engine.dispose()


def downgrade(url: str, *, revision: str) -> None:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
            connection.commit()
    finally:
        engine.dispose()
