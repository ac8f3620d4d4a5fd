"""API keys and scopes: who is calling, and may they.

Keys look like `frk_<10 hex>_<43 url-safe chars>`: the `frk_` prefix tells a facerec key at a
glance, the first part is a public lookup id, and the rest is 256 bits of secret. Only the
SHA-256 of the whole token is stored (a slow password hash buys nothing for 256-bit random
secrets), and it is compared in constant time. Every key change is audited in its own transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.db.records import AuditEntry, KeyRecord
from app.db.session import Database
from app.errors import ApiKeyNotFoundError, InsufficientScopeError, RateLimitedError, UnauthenticatedError
from app.scopes import Scope
from app.services.ratelimit import RateLimiter

__all__ = ["ANONYMOUS", "SYSTEM", "IssuedKey", "KeyService", "Principal", "Scope"]

TOKEN_PREFIX = "frk_"  # noqa: S105 - the public marker of a facerec key, not a secret
_PREFIX_HEX_CHARS = 10
_PREFIX_LENGTH = len(TOKEN_PREFIX) + _PREFIX_HEX_CHARS
_LAST_USED_EVERY_S = 60.0


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

    def audit(
        self,
        action: str,
        *,
        collection: str | None = None,
        subject_ids: Sequence[uuid.UUID] = (),
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """A successful audit entry of this principal's action."""
        return AuditEntry(
            action=action,
            key_id=self.key_id,
            collection=collection,
            subject_ids=tuple(subject_ids),
            details=details or {},
        )


ANONYMOUS = Principal(key_id=None, name="auth-disabled", scopes=frozenset(Scope), collections=None)
# The service itself (retention purges, the first-run key): no key, every scope.
SYSTEM = Principal(key_id=None, name="facerec", scopes=frozenset(Scope), collections=None)


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


def token_prefix(token: str) -> str:
    """The lookup prefix of a well-formed token, or "" (the secret part may itself contain "_")."""
    well_formed = token.startswith(TOKEN_PREFIX) and token[_PREFIX_LENGTH:][:1] == "_"
    return token[:_PREFIX_LENGTH] if well_formed else ""


class KeyService:
    def __init__(self, *, database: Database, rate_limiter: RateLimiter | None = None) -> None:
        self._database = database
        self._rate_limiter = rate_limiter
        self._last_touched: dict[uuid.UUID, float] = {}

    async def create(
        self, *, name: str, scopes: list[Scope], collections: list[str] | None, principal: Principal
    ) -> IssuedKey:
        prefix, token = new_token()
        async with self._database.transaction() as repository:
            record = await repository.add_key(
                name=name,
                prefix=prefix,
                secret_sha256=digest(token),
                scopes=sorted({scope.value for scope in scopes}),
                collections=None if collections is None else sorted(set(collections)),
            )
            details = {"key_id": str(record.id), "scopes": list(record.scopes)}
            await repository.append_audit(principal.audit("key.create", details=details))
        return IssuedKey(token=token, record=record)

    async def list(self) -> list[KeyRecord]:
        async with self._database.transaction() as repository:
            return await repository.list_keys()

    async def count(self) -> int:
        async with self._database.transaction() as repository:
            return await repository.count_keys()

    async def revoke(self, key_id: uuid.UUID, *, principal: Principal) -> KeyRecord:
        async with self._database.transaction() as repository:
            if not await repository.revoke_key(key_id):
                raise ApiKeyNotFoundError(f"No API key with id {key_id}.", details={"key_id": str(key_id)})
            record = await repository.key_by_id(key_id)
            await repository.append_audit(principal.audit("key.revoke", details={"key_id": str(key_id)}))
        assert record is not None
        return record

    async def rotate(self, key_id: uuid.UUID, *, principal: Principal) -> IssuedKey:
        """A new key with the same name, scopes and collections; the old one stops working now."""
        async with self._database.transaction() as repository:
            old = await repository.key_by_id(key_id)
            if old is None:
                raise ApiKeyNotFoundError(f"No API key with id {key_id}.", details={"key_id": str(key_id)})
            await repository.revoke_key(key_id)
            prefix, token = new_token()
            record = await repository.add_key(
                name=old.name,
                prefix=prefix,
                secret_sha256=digest(token),
                scopes=list(old.scopes),
                collections=None if old.collections is None else list(old.collections),
            )
            details = {"key_id": str(key_id), "new_key_id": str(record.id)}
            await repository.append_audit(principal.audit("key.rotate", details=details))
        return IssuedKey(token=token, record=record)

    async def authenticate(self, token: str | None, *, scope: Scope | None = None) -> Principal:
        """The key's principal, or UnauthenticatedError for a missing, unknown or revoked key.

        With `scope`, the key must hold it (InsufficientScopeError) and be within its rate limit
        there (RateLimitedError): the lookup and the rate-limit take share one transaction.
        """
        if not token:
            raise UnauthenticatedError("An API key is required: send `Authorization: Bearer <key>` or `X-API-Key`.")
        prefix = token_prefix(token)
        refused: RateLimitedError | None = None
        async with self._database.transaction() as repository:
            record = await repository.key_by_prefix(prefix) if prefix else None
            # Compare against a digest even when there is no such key, so timing says nothing.
            expected = record.secret_sha256 if record is not None else digest("no-such-key")
            valid = hmac.compare_digest(digest(token), expected) and record is not None
            if not valid or record is None or record.revoked_at is not None:
                raise UnauthenticatedError("The API key is unknown or revoked.")
            principal = Principal(
                key_id=record.id,
                name=record.name,
                scopes=frozenset(Scope(scope) for scope in record.scopes),
                collections=None if record.collections is None else frozenset(record.collections),
            )
            if scope is not None:
                principal.require(scope)
                if self._rate_limiter is not None:
                    refused = await self._rate_limiter.take(repository, key_id=record.id, scope=scope.value)
            now = time.monotonic()
            if now - self._last_touched.get(record.id, -_LAST_USED_EVERY_S) >= _LAST_USED_EVERY_S:
                self._last_touched[record.id] = now
                await repository.touch_key(record.id)
        if refused is not None:
            raise refused
        return principal
