"""The HNSW index's build parameters: read them, and rebuild the index with new ones.

pgvector keeps `m` and `ef_construction` as options of the index, used when it is built. The
migration builds it with pgvector's defaults (16, 64); FACEREC_HNSW_M and
FACEREC_HNSW_EF_CONSTRUCTION are applied by `facerec db upgrade` (and migrate-on-start) at once
while the gallery is empty, and otherwise by `facerec db reindex`, which rebuilds it
concurrently: searches keep working (on the old index) while it runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Connection, create_engine, text

from app.config import Settings

logger = logging.getLogger(__name__)

INDEX_NAME = "ix_faces_embedding_hnsw"


@dataclass(frozen=True)
class HnswOptions:
    m: int = 16
    ef_construction: int = 64

    def __post_init__(self) -> None:
        # pgvector's own limits: m 2-100, ef_construction 4-1000 and at least 2 * m.
        if not 2 <= self.m <= 100:
            raise ValueError(f"HNSW m must be 2-100, not {self.m}")
        if not max(4, 2 * self.m) <= self.ef_construction <= 1000:
            raise ValueError(f"HNSW ef_construction must be {max(4, 2 * self.m)}-1000 (at least 2 x m)")

    @classmethod
    def of(cls, settings: Settings) -> HnswOptions:
        return cls(m=settings.hnsw_m, ef_construction=settings.hnsw_ef_construction)

    def sql(self) -> str:
        return f"m = {self.m:d}, ef_construction = {self.ef_construction:d}"


def read_options(connection: Connection) -> HnswOptions | None:
    """The options the index was built with (pgvector's defaults where unset), or None if there is no index."""
    row = connection.execute(
        text("SELECT reloptions FROM pg_class WHERE relname = :name AND relkind = 'i'"), {"name": INDEX_NAME}
    ).one_or_none()
    if row is None:
        return None
    options = dict(option.split("=", 1) for option in (row[0] or []))
    defaults = HnswOptions()
    return HnswOptions(
        m=int(options.get("m", defaults.m)),
        ef_construction=int(options.get("ef_construction", defaults.ef_construction)),
    )


def apply_if_empty(connection: Connection, *, wanted: HnswOptions) -> None:
    """Rebuild the index with `wanted` when it differs and there are no faces; else say how to."""
    current = read_options(connection)
    if current is None or current == wanted:
        return
    if connection.execute(text("SELECT EXISTS (SELECT 1 FROM faces)")).scalar_one():
        logger.warning(
            "the HNSW index was built with %s, not the configured %s: run `facerec db reindex` to rebuild it",
            current.sql(),
            wanted.sql(),
        )
        return
    connection.execute(text(f"ALTER INDEX {INDEX_NAME} SET ({wanted.sql()})"))
    connection.execute(text(f"REINDEX INDEX {INDEX_NAME}"))
    logger.info("HNSW index options set to %s", wanted.sql())


def rebuild(url: str, *, wanted: HnswOptions) -> tuple[HnswOptions | None, float]:
    """Set the options and rebuild the index without blocking searches; the old options and the seconds taken."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")  # REINDEX CONCURRENTLY refuses transactions
    try:
        with engine.connect() as connection:
            before = read_options(connection)
            if before is None:
                raise LookupError(f"there is no {INDEX_NAME} index: run `facerec db upgrade` first")
            started = time.perf_counter()
            connection.execute(text(f"ALTER INDEX {INDEX_NAME} SET ({wanted.sql()})"))
            connection.execute(text(f"REINDEX INDEX CONCURRENTLY {INDEX_NAME}"))
            return before, time.perf_counter() - started
    finally:
        engine.dispose()
