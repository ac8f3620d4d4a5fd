"""`facerec purge`: retention, now."""

from __future__ import annotations

from app.cli.common import OK, command, run, settings
from app.composition import open_services


@command
def purge() -> int:
    """Delete faces past their collection's retention period now."""

    async def go() -> None:
        async with open_services(settings(), with_engine=False) as services:
            report = await services.gallery.purge_expired()
        print(f"deleted {report.faces_deleted} expired faces of {report.subjects_affected} subjects")

    run(go())
    return OK
