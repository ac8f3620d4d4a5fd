"""`facerec db`: schema migrations and the HNSW index."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import OK, command, fail, run, settings
from app.composition import database_url
from app.db import hnsw, migrate
from app.db.hnsw import HnswOptions

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


@app.command()
@command
def upgrade(revision: Annotated[str, typer.Option(help="target revision")] = "head") -> int:
    """Migrate to the latest schema (embedded database or FACEREC_DATABASE_URL)."""
    config = settings()

    async def go() -> None:
        async with database_url(config) as url:
            migrate.upgrade(url, revision=revision, hnsw=HnswOptions.of(config))

    run(go())
    print(f"database schema upgraded to {revision}")
    return OK


@app.command()
@command
def downgrade(revision: Annotated[str, typer.Option(help="target revision")] = "base") -> int:
    """Migrate down."""

    async def go() -> None:
        async with database_url(settings()) as url:
            migrate.downgrade(url, revision=revision)

    run(go())
    print(f"database schema downgraded to {revision}")
    return OK


@app.command()
@command
def reindex() -> int:
    """Rebuild the HNSW index with FACEREC_HNSW_M and FACEREC_HNSW_EF_CONSTRUCTION (searches go on)."""
    config = settings()
    wanted = HnswOptions.of(config)

    async def go() -> tuple[HnswOptions | None, float]:
        async with database_url(config) as url:
            return hnsw.rebuild(migrate.normalise_url(url), wanted=wanted)

    try:
        before, seconds = run(go())
    except LookupError as error:
        raise fail(f"facerec: {error}", code=1) from None
    was = before.sql() if before else "no options"
    print(f"HNSW index rebuilt with {wanted.sql()} (was {was}) in {seconds:.1f}s")
    return OK
