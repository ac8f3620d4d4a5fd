"""The audit trail: every audited action's entry is written in the transaction of its effect.

Successful actions append their entry inside their own unit of work (so the entry and the change
commit together, or neither does). An action that fails with a domain error is recorded with the
error's code as its outcome, in a transaction of its own. Nothing swallows an audit error: if the
entry cannot be written, the request fails with 503 AUDIT_UNAVAILABLE.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.db.records import AuditEntry, AuditQuery, AuditRecord
from app.db.session import Database
from app.errors import AuditUnavailableError, DatabaseUnavailableError, FacerecError


class AuditTrail:
    def __init__(self, *, database: Database) -> None:
        self._database = database

    @asynccontextmanager
    async def recording_failures(self, entry: AuditEntry) -> AsyncIterator[AuditEntry]:
        """Record `entry` with the error's code as outcome when the block raises a domain error.

        The block writes the success entry itself, in its own transaction, when it succeeds.
        """
        try:
            yield entry
        except (AuditUnavailableError, DatabaseUnavailableError):
            raise  # the log cannot be written now: the request fails with 503 and changed nothing
        except FacerecError as error:
            async with self._database.transaction() as repository:
                await repository.append_audit(dataclasses.replace(entry, outcome=error.code))
            raise

    async def query(self, query: AuditQuery) -> tuple[list[AuditRecord], int]:
        async with self._database.transaction() as repository:
            return await repository.query_audit(query)
