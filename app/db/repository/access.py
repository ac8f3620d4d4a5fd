"""API keys, the audit log and Idempotency-Key answers. Only SHA-256 digests of key secrets are written.

The audit log is append-only (the database rejects UPDATE, DELETE and TRUNCATE on it). Its
entries are written in the transaction of the change they record; a failed write raises
AuditWriteError, so that the change is rolled back with it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from app.db.records import AuditEntry, AuditQuery, AuditRecord, KeyRecord
from app.db.repository.base import Statements


class AuditWriteError(Exception):
    """The audit entry could not be written."""


_KEY_COLUMNS = "id, name, prefix, secret_sha256, scopes, collections, created_at, last_used_at, revoked_at"


def _key(row: tuple[Any, ...]) -> KeyRecord:
    key_id, name, prefix, secret_sha256, scopes, collections, created_at, last_used_at, revoked_at = row
    return KeyRecord(
        id=key_id,
        name=name,
        prefix=prefix,
        secret_sha256=secret_sha256,
        scopes=tuple(scopes),
        collections=None if collections is None else tuple(collections),
        created_at=created_at,
        last_used_at=last_used_at,
        revoked_at=revoked_at,
    )


class AccessStatements(Statements):
    async def add_key(
        self, *, name: str, prefix: str, secret_sha256: str, scopes: list[str], collections: list[str] | None
    ) -> KeyRecord:
        row = await self._row(
            "INSERT INTO api_keys (id, name, prefix, secret_sha256, scopes, collections)"
            f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_KEY_COLUMNS}",
            params=(uuid.uuid4(), name, prefix, secret_sha256, scopes, collections),
        )
        assert row is not None
        return _key(row)

    async def key_by_prefix(self, prefix: str) -> KeyRecord | None:
        row = await self._row(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE prefix = %s", params=(prefix,), prepare=True)
        return None if row is None else _key(row)

    async def key_by_id(self, key_id: uuid.UUID) -> KeyRecord | None:
        row = await self._row(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = %s", params=(key_id,))
        return None if row is None else _key(row)

    async def touch_key(self, key_id: uuid.UUID) -> None:
        await self._connection.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE id = %s", (key_id,), prepare=True
        )

    async def list_keys(self) -> list[KeyRecord]:
        return [_key(row) for row in await self._rows(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id")]

    async def count_keys(self) -> int:
        row = await self._row("SELECT count(*) FROM api_keys")
        return int(row[0]) if row else 0

    async def revoke_key(self, key_id: uuid.UUID) -> bool:
        """Mark the key revoked (idempotent); False when there is no such key."""
        changed = await self._count(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s", params=(key_id,)
        )
        return changed > 0

    async def append_audit(self, entry: AuditEntry) -> None:
        """The entry, in this transaction: if it cannot be written, the transaction must not commit."""
        try:
            await self._connection.execute(
                "INSERT INTO audit_log (key_id, action, collection, subject_ids, outcome, details)"
                " VALUES (%s, %s, %s, %s::uuid[], %s, %s)",
                (
                    entry.key_id,
                    entry.action,
                    entry.collection,
                    list(entry.subject_ids),
                    entry.outcome,
                    Jsonb(entry.details),
                ),
                prepare=True,
            )
        except psycopg.OperationalError:
            raise  # the connection is gone: the database is unavailable, which is reported as such
        except psycopg.Error as error:
            raise AuditWriteError(f"{type(error).__name__}: {error}") from error

    async def query_audit(self, query: AuditQuery) -> tuple[list[AuditRecord], int]:
        """Entries newest first, and how many match in all."""
        conditions: list[str] = []
        params: list[Any] = []
        for column, operator, value in (
            ("at", ">=", query.since),
            ("at", "<", query.until),
            ("action", "=", query.action),
        ):
            if value is not None:
                conditions.append(f"{column} {operator} %s")
                params.append(value)
        if query.subject_id is not None:
            conditions.append("subject_ids @> ARRAY[%s]::uuid[]")
            params.append(query.subject_id)
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        rows = await self._rows(
            "SELECT id, at, key_id, action, collection, subject_ids, outcome, details FROM audit_log"
            f"{where} ORDER BY at DESC, id DESC LIMIT %s OFFSET %s",
            params=(*params, query.limit, query.offset),
        )
        total = await self._row(f"SELECT count(*) FROM audit_log{where}", params=params)
        records = [
            AuditRecord(
                id=entry_id,
                at=at,
                key_id=key_id,
                action=action,
                collection=collection,
                subject_ids=tuple(subject_ids),
                outcome=outcome,
                details=details,
            )
            for entry_id, at, key_id, action, collection, subject_ids, outcome, details in rows
        ]
        return records, int(total[0]) if total else 0

    async def idempotent_response(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """The request fingerprint and stored answer for an Idempotency-Key, if it was seen."""
        row = await self._row("SELECT request_sha256, response FROM idempotency_keys WHERE key = %s", params=(key,))
        return None if row is None else (row[0], row[1])

    async def save_idempotent_response(
        self, *, key: str, request_sha256: str, response: dict[str, Any], keep_for: timedelta
    ) -> bool:
        """Store the answer under the key; False when another request stored one first."""
        await self._count("DELETE FROM idempotency_keys WHERE created_at < now() - %s", params=(keep_for,))
        row = await self._row(
            "INSERT INTO idempotency_keys (key, request_sha256, response) VALUES (%s, %s, %s)"
            " ON CONFLICT (key) DO NOTHING RETURNING key",
            params=(key, request_sha256, Jsonb(response)),
        )
        return row is not None
