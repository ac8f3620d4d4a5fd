"""API keys and the audit log (admin scope)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.audit import audited
from app.api.auth import AdminKey
from app.api.deps import RuntimeDep
from app.api.errors import error_responses
from app.db.keys import KeyRecord
from app.schemas import AuditEntryRead, AuditPage, KeyCreate, KeyIssued, KeyList, KeyRead

router = APIRouter(tags=["access"])

COMMON_ERRORS = ("UNAUTHENTICATED", "INSUFFICIENT_SCOPE", "RATE_LIMITED", "DATABASE_UNAVAILABLE", "VALIDATION_ERROR")


def _key(record: KeyRecord) -> KeyRead:
    return KeyRead(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        scopes=list(record.scopes),
        collections=None if record.collections is None else list(record.collections),
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
    )


@router.post(
    "/keys",
    response_model=KeyIssued,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("BAD_REQUEST", *COMMON_ERRORS),
)
async def create_key(body: KeyCreate, principal: AdminKey, runtime: RuntimeDep) -> KeyIssued:
    """Create an API key; its secret is in this answer only."""
    async with audited(runtime, principal, "key.create") as note:
        issued = await runtime.keys.create(name=body.name, scopes=body.scopes, collections=body.collections)
        note.details.update(key_id=str(issued.record.id), scopes=list(issued.record.scopes))
    return KeyIssued(**_key(issued.record).model_dump(), key=issued.token)


@router.get("/keys", response_model=KeyList, responses=error_responses(*COMMON_ERRORS))
async def list_keys(principal: AdminKey, runtime: RuntimeDep) -> KeyList:
    """List API keys: prefix, scopes, dates; never secrets."""
    return KeyList(items=[_key(record) for record in await runtime.keys.list()])


@router.delete("/keys/{key_id}", response_model=KeyRead, responses=error_responses("API_KEY_NOT_FOUND", *COMMON_ERRORS))
async def revoke_key(key_id: uuid.UUID, principal: AdminKey, runtime: RuntimeDep) -> KeyRead:
    """Revoke a key; it stops working at once."""
    async with audited(runtime, principal, "key.revoke") as note:
        note.details["key_id"] = str(key_id)
        record = await runtime.keys.revoke(key_id)
    return _key(record)


@router.post(
    "/keys/{key_id}/rotate",
    response_model=KeyIssued,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("API_KEY_NOT_FOUND", *COMMON_ERRORS),
)
async def rotate_key(key_id: uuid.UUID, principal: AdminKey, runtime: RuntimeDep) -> KeyIssued:
    """Replace a key with a new one of the same scopes; the old one stops working at once."""
    async with audited(runtime, principal, "key.rotate") as note:
        note.details["key_id"] = str(key_id)
        issued = await runtime.keys.rotate(key_id)
        note.details["new_key_id"] = str(issued.record.id)
    return KeyIssued(**_key(issued.record).model_dump(), key=issued.token)


@router.get("/audit", response_model=AuditPage, responses=error_responses(*COMMON_ERRORS))
async def read_audit_log(
    principal: AdminKey,
    runtime: RuntimeDep,
    since: Annotated[datetime | None, Query(description="Entries at or after this time (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Entries before this time.")] = None,
    action: Annotated[str | None, Query(max_length=40, description="e.g. enroll, identify, subject.delete")] = None,
    subject_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditPage:
    """Read the audit log, newest first, filtered by time, action and subject."""
    records, total = await runtime.audit.query(
        since=since, until=until, action=action, subject_id=subject_id, limit=limit, offset=offset
    )
    items = [AuditEntryRead(**{**vars(r), "subject_ids": list(r.subject_ids)}) for r in records]
    return AuditPage(items=items, total=total, limit=limit, offset=offset)
