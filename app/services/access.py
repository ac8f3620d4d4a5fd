"""API keys, scopes and the audit trail.

Keys look like `frk_<10 hex>_<43 url-safe chars>`: the `frk_` prefix tells a facerec key at a
glance, the first part is a public lookup id, and the rest is 256 bits of secret. Only the
SHA-256 of the whole token is stored (a slow password hash buys nothing for 256-bit random
secrets), and it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.db import audit as audit_sql
from app.db import keys as key_sql
from app.db.audit import AuditRecord
from app.db.keys import KeyRecord
from app.db.session import Database
from app.errors import ApiKeyNotFoundError, InsufficientScopeError, UnauthenticatedError

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "frk_"  # noqa: S105 - the public marker of a facerec key, not a secret
_PREFIX_HEX_CHARS = 10
_PREFIX_LENGTH = len(TOKEN_PREFIX) + _PREFIX_HEX_CHARS
_LAST_USED_EVERY_S = 60.0


class Scope(StrEnum):
    DETECT = "detect"
    VERIFY = "verify"
    IDENTIFY = "identify"
    ENROLL = "enroll"
    MANAGE = "manage"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's id, name, scopes and collections (None = every collection)."""

    key_id: uuid.UUID | None
    name: str
    scopes: frozenset[Scope]
    collections: frozenset[str] | None

    def require(self, scope: Scope) -> None:
        # admin is a superset: an operator's key can do everything its service can.
        if scope not in self.scopes and Scope.ADMIN not in self.scopes:
            raise InsufficientScopeError(
                f"This key lacks the {scope.value!r} scope.",
                details={"required_scope": scope.value, "key_scopes": sorted(s.value for s in self.scopes)},
            )

    def allows_collection(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def require_collection(self, collection: str) -> None:
        if not self.allows_collection(collection):
            raise InsufficientScopeError(
                f"This key may not use collection {collection!r}.",
                details={"collection": collection, "key_collections": sorted(self.collections or ())},
            )


ANONYMOUS = Principal(key_id=None, name="auth-disabled", scopes=frozenset(Scope), collections=None)


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the token is returned to the caller once and never stored."""

    token: str
    record: KeyRecord


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """(public prefix, full token)."""
    prefix = TOKEN_PREFIX + secrets.token_hex(_PREFIX_HEX_CHARS // 2)
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


class KeyService:
    def __init__(self, *, database: Database) -> None:
        self._database = database
        self._last_touched: dict[uuid.UUID, float] = {}

    async def create(self, *, name: str, scopes: list[Scope], collections: list[str] | None) -> IssuedKey:
        prefix, token = new_token()
        async with self._database.transaction() as session:
            record = await key_sql.add_key(
                session,
                key_id=uuid.uuid4(),
                name=name,
                prefix=prefix,
                secret_sha256=digest(token),
                scopes=sorted({scope.value for scope in scopes}),
                collections=None if collections is None else sorted(set(collections)),
            )
        return IssuedKey(token=token, record=record)

    async def list(self) -> list[KeyRecord]:
        async with self._database.transaction() as session:
            return await key_sql.list_keys(session)

    async def count(self) -> int:
        async with self._database.transaction() as session:
            return await key_sql.count_keys(session)

    async def revoke(self, key_id: uuid.UUID) -> KeyRecord:
        async with self._database.transaction() as session:
            if not await key_sql.revoke_key(session, key_id):
                raise ApiKeyNotFoundError(f"No API key with id {key_id}.", details={"key_id": str(key_id)})
            record = await key_sql.key_by_id(session, key_id)
        assert record is not None
        return record

    async def rotate(self, key_id: uuid.UUID) -> IssuedKey:
        """A new key with the same name, scopes and collections; the old one stops working now."""
        async with self._database.transaction() as session:
            old = await key_sql.key_by_id(session, key_id)
            if old is None:
                raise ApiKeyNotFoundError(f"No API key with id {key_id}.", details={"key_id": str(key_id)})
            await key_sql.revoke_key(session, key_id)
            prefix, token = new_token()
            record = await key_sql.add_key(
                session,
                key_id=uuid.uuid4(),
                name=old.name,
                prefix=prefix,
                secret_sha256=digest(token),
                scopes=list(old.scopes),
                collections=None if old.collections is None else list(old.collections),
            )
        return IssuedKey(token=token, record=record)

    async def authenticate(self, token: str | None) -> Principal:
        """The key's principal, or UnauthenticatedError for a missing, unknown or revoked key."""
        if not token:
            raise UnauthenticatedError("An API key is required: send `Authorization: Bearer <key>` or `X-API-Key`.")
        # The secret part may itself contain "_": the prefix is the fixed-length start.
        prefix = token[:_PREFIX_LENGTH] if token.startswith(TOKEN_PREFIX) and token[_PREFIX_LENGTH:][:1] == "_" else ""
        async with self._database.driver_transaction() as connection:
            record = await key_sql.key_by_prefix(connection, prefix) if prefix else None
            # Compare against a digest even when there is no such key, so timing says nothing.
            expected = record.secret_sha256 if record is not None else digest("no-such-key")
            valid = hmac.compare_digest(digest(token), expected) and record is not None
            if not valid or record is None or record.revoked_at is not None:
                raise UnauthenticatedError("The API key is unknown or revoked.")
            now = time.monotonic()
            if now - self._last_touched.get(record.id, -_LAST_USED_EVERY_S) >= _LAST_USED_EVERY_S:
                self._last_touched[record.id] = now
                await key_sql.touch_key(connection, record.id)
        return Principal(
            key_id=record.id,
            name=record.name,
            scopes=frozenset(Scope(scope) for scope in record.scopes),
            collections=None if record.collections is None else frozenset(record.collections),
        )


class AuditService:
    def __init__(self, *, database: Database) -> None:
        self._database = database

    async def record(
        self,
        *,
        principal: Principal,
        action: str,
        outcome: str,
        collection: str | None = None,
        subject_ids: list[uuid.UUID] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        try:
            async with self._database.driver_transaction() as connection:
                await audit_sql.append_alone(
                    connection,
                    key_id=principal.key_id,
                    action=action,
                    collection=collection,
                    subject_ids=subject_ids or [],
                    outcome=outcome,
                    details=details or {},
                )
        except Exception:
            logger.exception("could not write the audit entry for %s (%s)", action, outcome)

    async def query(
        self,
        *,
        since: datetime | None,
        until: datetime | None,
        action: str | None,
        subject_id: uuid.UUID | None,
        limit: int,
        offset: int,
    ) -> tuple[list[AuditRecord], int]:
        async with self._database.transaction() as session:
            return await audit_sql.query(
                session, since=since, until=until, action=action, subject_id=subject_id, limit=limit, offset=offset
            )
