"""`facerec db`: schema migrations and the HNSW index (local only: the database this machine reaches).

The database libraries are imported by the commands that use them: a remote command has no use for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.common import OK, SOME_REJECTED, JsonFlag, command, fail, print_json, run, settings

if TYPE_CHECKING:
    from app.db.hnsw import HnswOptions

app = typer.Typer(
    help="Database schema migrations (local only: the embedded database or FACEREC_DATABASE_URL).",
    no_args_is_help=True,
)


@app.command()
@command
def upgrade(revision: Annotated[str, typer.Option(help="target revision")] = "head", as_json: JsonFlag = False) -> int:
    """Migrate to the latest schema (embedded database or FACEREC_DATABASE_URL)."""
    from app.composition import database_url
    from app.db import migrate
    from app.db.hnsw import HnswOptions

    config = settings()

    async def go() -> None:
        async with database_url(config) as url:
            migrate.upgrade(url, revision=revision, hnsw=HnswOptions.of(config))

    run(go())
    if as_json:
        print_json({"action": "upgrade", "revision": revision})
    else:
        print(f"database schema upgraded to {revision}")
    return OK


@app.command()
@command
def downgrade(
    revision: Annotated[str, typer.Option(help="target revision")] = "base", as_json: JsonFlag = False
) -> int:
    """Migrate down."""
    from app.composition import database_url
    from app.db import migrate

    async def go() -> None:
        async with database_url(settings()) as url:
            migrate.downgrade(url, revision=revision)

    run(go())
    if as_json:
        print_json({"action": "downgrade", "revision": revision})
    else:
        print(f"database schema downgraded to {revision}")
    return OK


def _options(options: HnswOptions | None) -> dict[str, int] | None:
    return None if options is None else {"m": options.m, "ef_construction": options.ef_construction}


@app.command()
@command
def reindex(as_json: JsonFlag = False) -> int:
    """Rebuild the HNSW index with FACEREC_HNSW_M and FACEREC_HNSW_EF_CONSTRUCTION (searches go on)."""
    from app.composition import database_url
    from app.db import hnsw, migrate
    from app.db.hnsw import HnswOptions

    config = settings()
    wanted = HnswOptions.of(config)

    async def go() -> tuple[HnswOptions | None, float]:
        async with database_url(config) as url:
            return hnsw.rebuild(migrate.normalise_url(url), wanted=wanted)

    try:
        before, seconds = run(go())
    except LookupError as error:
        raise fail(f"facerec: {error}", code=SOME_REJECTED) from None
    if as_json:
        print_json({"options": _options(wanted), "previous": _options(before), "seconds": round(seconds, 3)})
        return OK
    was = before.sql() if before else "no options"
    print(f"HNSW index rebuilt with {wanted.sql()} (was {was}) in {seconds:.1f}s")
    return OK
