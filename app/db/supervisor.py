"""Keeps the embedded Postgres this process started running: notices that it has died, starts it
again with exponential backoff, and says what is happening meanwhile (for /readyz).

Only a server the process owns is ever restarted: never an external database (FACEREC_DATABASE_URL),
nor an embedded server another process started on the same data dir. The connection pool needs
nothing from here: pre-ping drops the dead connections and opens new ones once the server is back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
from pathlib import Path

from app.db.embedded import EmbeddedPostgres

logger = logging.getLogger(__name__)


def _reason(error: Exception, *, server_log: Path) -> str:
    """One line on why a start failed: the server log's last FATAL line, else the error's first line."""
    if isinstance(error, subprocess.CalledProcessError):
        try:
            with server_log.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 16384))
                tail = log.read().decode(errors="replace").splitlines()
        except OSError:
            tail = []
        fatal = [line.partition("FATAL:")[2].strip() for line in tail if "FATAL:" in line]
        if fatal and "unexpected postmaster exit" not in fatal[-1]:
            return fatal[-1][:200]
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


class EmbeddedSupervisor:
    """Checks the server every `check_every_s`; restarts it after `first_backoff_s`, doubling to `max_backoff_s`."""

    def __init__(
        self,
        server: EmbeddedPostgres,
        *,
        check_every_s: float = 1.0,
        first_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._server = server
        self._check_every_s = check_every_s
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self.outage: str | None = None  # what is being done about a dead server; None while it runs
        self.restarts = 0

    async def run(self) -> None:
        """Watch the server until cancelled (the lifespan cancels it before it stops the server)."""
        if not self._server.owned:
            logger.info("the embedded Postgres was started by another process: it is not supervised here")
            return
        while True:
            await asyncio.sleep(self._check_every_s)
            if not await asyncio.to_thread(self._server.is_running):
                await self._restart()

    async def _restart(self) -> None:
        down_since = time.monotonic()
        logger.error("the embedded Postgres (data in %s) is not running: restarting it", self._server.pgdata)
        delay = self._first_backoff_s
        attempt = 1
        while True:
            self.outage = f"the embedded Postgres stopped; restarting it (attempt {attempt})"
            try:
                restarted = await asyncio.to_thread(self._server.recover)
            except Exception as error:  # noqa: BLE001 - every failure is retried; it is logged and reported
                reason = _reason(error, server_log=self._server.pgdata / "server.log")
                self.outage = (
                    f"the embedded Postgres stopped; restart attempt {attempt} failed ({reason}), next in {delay:.1f} s"
                )
                logger.warning("restarting the embedded Postgres failed, retrying in %.1f s: %s", delay, reason)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff_s)
                attempt += 1
                continue
            self.outage = None
            if restarted:
                self.restarts += 1
                logger.warning(
                    "the embedded Postgres is running again, %.1f s after it was found down (%s attempts)",
                    time.monotonic() - down_since,
                    attempt,
                )
            return
