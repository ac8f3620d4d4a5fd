"""Recording a route's outcome in the audit log, success or error."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from app.errors import FacerecError
from app.runtime import Runtime
from app.services.access import Principal


@dataclass
class AuditNote:
    """What the route learned that belongs in the entry (subjects touched, counts)."""

    subject_ids: list[uuid.UUID] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def audited(
    runtime: Runtime, principal: Principal, action: str, *, collection: str | None = None
) -> AsyncIterator[AuditNote]:
    note = AuditNote()
    try:
        yield note
    except FacerecError as error:
        await runtime.audit.record(
            principal=principal,
            action=action,
            outcome=error.code,
            collection=collection,
            subject_ids=note.subject_ids,
            details=note.details,
        )
        raise
    await runtime.audit.record(
        principal=principal,
        action=action,
        outcome="success",
        collection=collection,
        subject_ids=note.subject_ids,
        details=note.details,
    )
