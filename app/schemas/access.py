"""API keys and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import CollectionName, KeyName
from app.scopes import Scope


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: KeyName
    scopes: list[Scope] = Field(min_length=1, description="detect, verify, identify, enroll, manage, metrics, admin.")
    collections: list[CollectionName] | None = Field(
        default=None, max_length=100, description="Limit the key to these collections; null for all."
    )


class KeyRead(BaseModel):
    """A key without its secret, which is never stored."""

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The public start of the key, to tell keys apart.")
    scopes: list[str]
    collections: list[str] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyList(BaseModel):
    items: list[KeyRead]


class KeyIssued(KeyRead):
    key: str = Field(description="The secret key. Shown this once: store it now.")


class AuditEntryRead(BaseModel):
    id: int
    at: datetime
    key_id: uuid.UUID | None
    action: str
    collection: str | None
    subject_ids: list[uuid.UUID]
    outcome: str = Field(description="success, or the error code the request got.")
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    total: int
    limit: int
    offset: int
