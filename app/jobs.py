"""What only `facerec serve` runs in the background: database preparation, retention purges, the
first-run admin key, and the embedded Postgres' supervisor. CLI commands never start these."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any

from app.services.access import SYSTEM, Scope
from app.services.container import Services

logger = logging.getLogger(__name__)


def start_server_jobs(services: Services, *, stack: AsyncExitStack) -> None:
    """Start the server's background jobs; each is cancelled when the stack closes."""
    settings = services.settings
    _background(services.database.prepare(migrate=settings.migrate_on_start), stack=stack)
    if settings.auth_enabled and settings.database_url is None:
        _background(first_run_admin_key(services), stack=stack)
    if not settings.auth_enabled:
        logger.warning(
            "!!! AUTHENTICATION IS OFF (FACEREC_AUTH_ENABLED=false): anyone who can reach this port can "
            "enrol, identify and delete faces. Use this for local development only. !!!"
        )
    _background(purge_periodically(services, interval_s=settings.retention_check_interval_s), stack=stack)
    if services.supervisor is not None:
        _background(services.supervisor.run(), stack=stack)


def _background(job: Coroutine[Any, Any, None], *, stack: AsyncExitStack) -> None:
    task = asyncio.create_task(job)

    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(cancel)


async def first_run_admin_key(services: Services) -> None:
    """On the embedded database's first start, make one admin key and print it once (like a notebook token)."""
    await services.database.wait_ready(timeout_s=3600)
    if await services.keys.count() > 0:
        return
    issued = await services.keys.create(
        name="first-run admin", scopes=[Scope.ADMIN], collections=None, principal=SYSTEM
    )
    banner = "=" * 78
    print(
        f"\n{banner}\nfacerec created its first API key (scope: admin). It is shown only this once:\n\n"
        f"    {issued.token}\n\nSend it as `Authorization: Bearer <key>`. Create narrower keys with "
        f"POST /keys or `facerec keys create`.\n{banner}\n",
        file=sys.stderr,
        flush=True,
    )


async def purge_periodically(services: Services, *, interval_s: float) -> None:
    await services.database.wait_ready(timeout_s=365 * 24 * 3600)
    while True:
        try:
            report = await services.gallery.purge_expired()
            if report.faces_deleted:
                logger.info(
                    "retention: deleted %s expired faces of %s subjects", report.faces_deleted, report.subjects_affected
                )
        except Exception:
            logger.exception("retention purge failed")
        try:
            await services.rate_limiter.forget_idle()
        except Exception:
            logger.exception("deleting idle rate-limit buckets failed")
        await asyncio.sleep(interval_s)
