"""`facerec purge`: retention, now (local only: the service runs its own purge on a timer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.cli.common import OK, JsonFlag, cli_options, command, print_json, run, settings

if TYPE_CHECKING:
    from app.services.gallery import PurgeReport


@command
def purge(as_json: JsonFlag = False) -> int:
    """Delete faces past their collection's retention period now (local database only)."""
    from app.composition import open_services

    async def go() -> PurgeReport:
        async with open_services(settings(), with_engine=False, ready_timeout_s=cli_options().db_wait_s) as services:
            return await services.gallery.purge_expired()

    report = run(go())
    if as_json:
        print_json({"faces_deleted": report.faces_deleted, "subjects_affected": report.subjects_affected})
    else:
        print(f"deleted {report.faces_deleted} expired faces of {report.subjects_affected} subjects")
    return OK
