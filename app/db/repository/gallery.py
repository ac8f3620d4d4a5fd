"""Collections and subjects."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from app.db.records import CollectionRecord, CollectionSettings, CollectionSize, DeletionCounts, SubjectRecord
from app.db.repository.base import Statements

# The first half of the two-integer advisory lock key that enrolments take per collection.
ENROLMENT_LOCK_CLASS = 0x66616365


class NameTakenError(Exception):
    """A subject rename collided with the unique (collection, name) constraint."""


_COLLECTIONS = """
SELECT c.name, coalesce(s.n, 0), coalesce(f.n, 0), c.created_at, c.retention_days, c.match_threshold
FROM collections AS c
LEFT JOIN (SELECT collection_id, count(*) AS n FROM subjects GROUP BY collection_id) AS s ON s.collection_id = c.id
LEFT JOIN (SELECT collection_id, count(*) AS n FROM faces GROUP BY collection_id) AS f ON f.collection_id = c.id
"""

# Only the counts, for /metrics: a scan of the (collection_id, ...) indexes, grouped.
_COLLECTION_SIZES = """
SELECT c.name, coalesce(s.n, 0), coalesce(f.n, 0)
FROM collections AS c
LEFT JOIN (SELECT collection_id, count(*) AS n FROM subjects GROUP BY collection_id) AS s ON s.collection_id = c.id
LEFT JOIN (SELECT collection_id, count(*) AS n FROM faces GROUP BY collection_id) AS f ON f.collection_id = c.id
ORDER BY c.name
"""

_SUBJECTS = """
SELECT s.id, s.name, c.name, s.metadata, (SELECT count(*) FROM faces AS f WHERE f.subject_id = s.id),
       s.created_at, s.updated_at
FROM subjects AS s JOIN collections AS c ON c.id = s.collection_id
"""


def _collection(row: tuple[Any, ...]) -> CollectionRecord:
    name, subjects, faces, created_at, retention_days, match_threshold = row
    return CollectionRecord(
        name=name,
        subject_count=subjects,
        face_count=faces,
        created_at=created_at,
        retention_days=retention_days,
        match_threshold=match_threshold,
    )


def _subject(row: tuple[Any, ...]) -> SubjectRecord:
    subject_id, name, collection, metadata, face_count, created_at, updated_at = row
    return SubjectRecord(
        id=subject_id,
        name=name,
        collection=collection,
        metadata=metadata,
        face_count=face_count,
        created_at=created_at,
        updated_at=updated_at,
    )


def like_pattern(text: str) -> str:
    """A LIKE pattern matching text anywhere, with its own % _ and \\ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class GalleryStatements(Statements):
    async def collection_id(self, name: str) -> int | None:
        row = await self._row("SELECT id FROM collections WHERE name = %s", params=(name,), prepare=True)
        return None if row is None else int(row[0])

    async def ensure_collection(self, name: str) -> int:
        """The collection's id, creating it if needed; safe under concurrent first use."""
        row = await self._row(
            "INSERT INTO collections (name) VALUES (%s) ON CONFLICT (name) DO UPDATE SET name = excluded.name"
            " RETURNING id",
            params=(name,),
            prepare=True,
        )
        assert row is not None
        return int(row[0])

    async def list_collections(self) -> list[CollectionRecord]:
        return [_collection(row) for row in await self._rows(_COLLECTIONS + " ORDER BY c.name")]

    async def collection_sizes(self) -> list[CollectionSize]:
        """Subjects and faces of every collection, in one grouped query."""
        rows = await self._rows(_COLLECTION_SIZES)
        return [CollectionSize(name=name, subjects=int(subjects), faces=int(faces)) for name, subjects, faces in rows]

    async def collection(self, name: str) -> CollectionRecord | None:
        row = await self._row(_COLLECTIONS + " WHERE c.name = %s", params=(name,))
        return None if row is None else _collection(row)

    async def collection_settings(self, name: str) -> CollectionSettings | None:
        row = await self._row(
            "SELECT id, match_threshold FROM collections WHERE name = %s", params=(name,), prepare=True
        )
        return None if row is None else CollectionSettings(id=int(row[0]), match_threshold=row[1])

    async def update_collection(self, collection_id: int, *, values: dict[str, Any]) -> None:
        """Set the given fields (retention_days, match_threshold); None clears one."""
        columns = [column for column in ("retention_days", "match_threshold") if column in values]
        if columns:
            assignments = ", ".join(f"{column} = %s" for column in columns)
            params = (*(values[column] for column in columns), collection_id)
            await self._count(f"UPDATE collections SET {assignments} WHERE id = %s", params=params)

    async def lock_collection_for_enrolment(self, collection_id: int) -> None:
        """Until this transaction ends, other enrolments into the collection wait: the duplicate-identity
        check and the insert it guards happen as one step."""
        await self._connection.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", (ENROLMENT_LOCK_CLASS, collection_id), prepare=True
        )

    async def delete_collection_contents(self, collection_id: int) -> DeletionCounts:
        faces = await self._count("DELETE FROM faces WHERE collection_id = %s", params=(collection_id,))
        subjects = await self._count("DELETE FROM subjects WHERE collection_id = %s", params=(collection_id,))
        return DeletionCounts(subjects=subjects, faces=faces)

    async def delete_collection(self, collection_id: int) -> None:
        await self._count("DELETE FROM collections WHERE id = %s", params=(collection_id,))

    async def ensure_subject(
        self, *, collection_id: int, name: str, metadata: dict[str, Any] | None
    ) -> tuple[uuid.UUID, bool]:
        """The subject's id and whether it was created now; INSERT ... ON CONFLICT, never check-then-insert."""
        created = await self._row(
            "INSERT INTO subjects (id, collection_id, name, metadata) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT ON CONSTRAINT uq_subjects_collection_name DO NOTHING RETURNING id",
            params=(uuid.uuid4(), collection_id, name, None if metadata is None else Jsonb(metadata)),
            prepare=True,
        )
        if created is not None:
            return created[0], True
        existing = await self.find_subject_id(collection_id=collection_id, name=name)
        if existing is None:  # deleted between the two statements: try once more
            return await self.ensure_subject(collection_id=collection_id, name=name, metadata=metadata)
        return existing, False

    async def find_subject_id(self, *, collection_id: int, name: str) -> uuid.UUID | None:
        row = await self._row(
            "SELECT id FROM subjects WHERE collection_id = %s AND name = %s", params=(collection_id, name), prepare=True
        )
        return None if row is None else row[0]

    async def list_subjects(
        self,
        *,
        collection_id: int | None,
        allowed_collections: frozenset[str] | None,
        name_contains: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[SubjectRecord], int]:
        """A page of subjects ordered by collection and name, and the total count."""
        conditions: list[str] = []
        params: list[Any] = []
        if collection_id is not None:
            conditions.append("s.collection_id = %s")
            params.append(collection_id)
        if allowed_collections is not None:
            conditions.append("c.name = ANY(%s)")
            params.append(sorted(allowed_collections))
        if name_contains:
            conditions.append("s.name ILIKE %s")
            params.append(like_pattern(name_contains))
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        rows = await self._rows(
            _SUBJECTS + where + " ORDER BY c.name, s.name, s.id LIMIT %s OFFSET %s", params=(*params, limit, offset)
        )
        total = await self._row(
            "SELECT count(*) FROM subjects AS s JOIN collections AS c ON c.id = s.collection_id" + where,
            params=params,
        )
        return [_subject(row) for row in rows], int(total[0]) if total else 0

    async def get_subject(self, subject_id: uuid.UUID) -> SubjectRecord | None:
        row = await self._row(_SUBJECTS + " WHERE s.id = %s", params=(subject_id,))
        return None if row is None else _subject(row)

    async def update_subject(self, subject_id: uuid.UUID, *, values: dict[str, Any]) -> bool:
        """Apply the changed fields (name, metadata); False when the subject does not exist."""
        assignments = ["updated_at = now()"]
        params: list[Any] = []
        if "name" in values:
            assignments.append("name = %s")
            params.append(values["name"])
        if "metadata" in values:
            assignments.append("metadata = %s")
            params.append(None if values["metadata"] is None else Jsonb(values["metadata"]))
        try:
            async with self._connection.transaction():  # a savepoint: a taken name must not end the outer one
                changed = await self._count(
                    f"UPDATE subjects SET {', '.join(assignments)} WHERE id = %s", params=(*params, subject_id)
                )
        except psycopg.errors.UniqueViolation:
            raise NameTakenError from None
        return changed > 0

    async def delete_subject(self, subject_id: uuid.UUID) -> int | None:
        """Delete the subject and its faces; the number of faces removed, or None if there was no subject."""
        faces = await self._count("DELETE FROM faces WHERE subject_id = %s", params=(subject_id,))
        subjects = await self._count("DELETE FROM subjects WHERE id = %s", params=(subject_id,))
        return faces if subjects else None
