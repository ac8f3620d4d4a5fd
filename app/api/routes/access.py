"""API keys and the audit log (admin scope)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from app.api import convert
from app.api.auth import AdminKey
from app.api.deps import ServicesDep
from app.api.errors import COMMON_ERRORS, error_responses
from app.db.records import AuditQuery
from app.schemas import AuditPage, KeyCreate, KeyIssued, KeyList, KeyRead

router = APIRouter(tags=["access"])


def audit_query(
    since: Annotated[datetime | None, Query(description="Entries at or after this time (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Entries before this time.")] = None,
    action: Annotated[str | None, Query(max_length=40, description="e.g. enroll, identify, subject.delete")] = None,
    subject_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditQuery:
    return AuditQuery(since=since, until=until, action=action, subject_id=subject_id, limit=limit, offset=offset)


@router.post(
    "/keys",
    response_model=KeyIssued,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("BAD_REQUEST", *COMMON_ERRORS),
)
async def create_key(body: KeyCreate, principal: AdminKey, services: ServicesDep) -> KeyIssued:
    """Create an API key; its secret is in this answer only."""
    issued = await services.keys.create(
        name=body.name, scopes=body.scopes, collections=body.collections, principal=principal
    )
    return convert.key_issued(issued)


@router.get("/keys", response_model=KeyList, responses=error_responses(*COMMON_ERRORS))
async def list_keys(principal: AdminKey, services: ServicesDep) -> KeyList:
    """List API keys: prefix, scopes, dates; never secrets."""
    return KeyList(items=[convert.key(record) for record in await services.keys.list()])


@router.delete("/keys/{key_id}", response_model=KeyRead, responses=error_responses("API_KEY_NOT_FOUND", *COMMON_ERRORS))
async def revoke_key(key_id: uuid.UUID, principal: AdminKey, services: ServicesDep) -> KeyRead:
    """Revoke a key; it stops working at once."""
    return convert.key(await services.keys.revoke(key_id, principal=principal))


@router.post(
    "/keys/{key_id}/rotate",
    response_model=KeyIssued,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("API_KEY_NOT_FOUND", *COMMON_ERRORS),
)
async def rotate_key(key_id: uuid.UUID, principal: AdminKey, services: ServicesDep) -> KeyIssued:
    """Replace a key with a new one of the same scopes; the old one stops working at once."""
    issued = await services.keys.rotate(key_id, principal=principal)
    return convert.key_issued(issued)


@router.get("/audit", response_model=AuditPage, responses=error_responses(*COMMON_ERRORS))
async def read_audit_log(
    principal: AdminKey, services: ServicesDep, query: Annotated[AuditQuery, Depends(audit_query)]
) -> AuditPage:
    """Read the audit log, newest first, filtered by time, action and subject."""
    records, total = await services.audit.query(query)
    items = [convert.audit_entry(record) for record in records]
    return AuditPage(items=items, total=total, limit=query.limit, offset=query.offset)
