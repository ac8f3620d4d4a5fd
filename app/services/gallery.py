"""Gallery management: collections, subjects and faces.

Deletes remove embeddings for good, and each one writes its receipt to the audit log in the
same transaction: there is never a deletion without its record, nor a record without the deletion.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import audit as audit_sql
from app.db import repository
from app.db.models import DEFAULT_COLLECTION
from app.db.records import CollectionRecord, DeletionCounts, FaceRecord, SubjectRecord
from app.db.session import Database
from app.errors import (
    CollectionNotFoundError,
    FaceNotFoundError,
    SubjectNameConflictError,
    SubjectNotFoundError,
)
from app.services.access import Principal


@dataclass(frozen=True)
class DeletionReceipt:
    """What a subject deletion removed, and when."""

    subject_id: uuid.UUID
    subject: str
    collection: str
    faces_deleted: int
    deleted_at: datetime


@dataclass(frozen=True)
class PurgeReport:
    faces_deleted: int
    subjects_affected: int


class GalleryService:
    def __init__(self, *, database: Database) -> None:
        self._database = database

    async def list_collections(self, *, principal: Principal) -> list[CollectionRecord]:
        async with self._database.transaction() as session:
            records = await repository.list_collections(session)
        return [record for record in records if principal.allows_collection(record.name)]

    async def set_retention(self, name: str, *, days: int | None, principal: Principal) -> CollectionRecord:
        principal.require_collection(name)
        async with self._database.transaction() as session:
            collection_id = await _existing_collection(session, name)
            await repository.set_retention(session, collection_id, days=days)
            await audit_sql.append(
                session,
                key_id=principal.key_id,
                action="collection.update",
                collection=name,
                subject_ids=[],
                outcome="success",
                details={"retention_days": days},
            )
            records = await repository.list_collections(session)
        return next(record for record in records if record.name == name)

    async def delete_collection(self, name: str, *, principal: Principal) -> DeletionCounts:
        """Remove every subject and face of the collection; the default collection stays, empty."""
        principal.require_collection(name)
        async with self._database.transaction() as session:
            collection_id = await _existing_collection(session, name)
            counts = await repository.delete_collection_contents(session, collection_id)
            if name != DEFAULT_COLLECTION:
                await repository.delete_collection(session, collection_id)
            await audit_sql.append(
                session,
                key_id=principal.key_id,
                action="collection.delete",
                collection=name,
                subject_ids=[],
                outcome="success",
                details={"subjects_deleted": counts.subjects, "faces_deleted": counts.faces},
            )
            return counts

    async def list_subjects(
        self, *, collection: str | None, limit: int, offset: int, principal: Principal, name_contains: str | None = None
    ) -> tuple[list[SubjectRecord], int]:
        async with self._database.transaction() as session:
            collection_id = None
            if collection is not None:
                principal.require_collection(collection)
                collection_id = await _existing_collection(session, collection)
            return await repository.list_subjects(
                session,
                collection_id=collection_id,
                allowed_collections=principal.collections,
                limit=limit,
                offset=offset,
                name_contains=name_contains,
            )

    async def get_subject(self, subject_id: uuid.UUID, *, principal: Principal) -> SubjectRecord:
        async with self._database.transaction() as session:
            return await _visible_subject(session, subject_id, principal)

    async def update_subject(
        self, subject_id: uuid.UUID, *, changes: dict[str, Any], principal: Principal
    ) -> SubjectRecord:
        async with self._database.transaction() as session:
            await _visible_subject(session, subject_id, principal)
            if changes:
                try:
                    await repository.update_subject(session, subject_id, values=changes)
                except repository.NameTakenError:
                    raise SubjectNameConflictError(
                        f"Another subject in this collection is already named {changes.get('name')!r}.",
                        details={"name": changes.get("name")},
                    ) from None
            return await _visible_subject(session, subject_id, principal)

    async def delete_subject(self, subject_id: uuid.UUID, *, principal: Principal) -> DeletionReceipt:
        """Delete the subject and its faces, and write the deletion receipt to the audit log."""
        async with self._database.transaction() as session:
            subject = await _visible_subject(session, subject_id, principal)
            faces_deleted = await repository.delete_subject(session, subject_id) or 0
            receipt = DeletionReceipt(subject_id, subject.name, subject.collection, faces_deleted, datetime.now(UTC))
            await audit_sql.append(
                session,
                key_id=principal.key_id,
                action="subject.delete",
                collection=subject.collection,
                subject_ids=[subject_id],
                outcome="success",
                details={"faces_deleted": faces_deleted, "deleted_at": receipt.deleted_at.isoformat()},
            )
        return receipt

    async def list_faces(self, subject_id: uuid.UUID, *, principal: Principal) -> list[FaceRecord]:
        async with self._database.transaction() as session:
            await _visible_subject(session, subject_id, principal)
            return await repository.list_faces(session, subject_id)

    async def delete_face(self, face_id: uuid.UUID, *, principal: Principal) -> None:
        async with self._database.transaction() as session:
            owner = await repository.face_owner(session, face_id)
            if owner is None or not principal.allows_collection(owner[1]):
                raise FaceNotFoundError(f"No face with id {face_id}.", details={"face_id": str(face_id)})
            await repository.delete_face(session, face_id)
            await audit_sql.append(
                session,
                key_id=principal.key_id,
                action="face.delete",
                collection=owner[1],
                subject_ids=[owner[0]],
                outcome="success",
                details={"face_id": str(face_id)},
            )

    async def purge_expired(self) -> PurgeReport:
        """Delete faces past their collection's retention period, auditing each subject's deletions."""
        async with self._database.transaction() as session:
            deleted = await repository.delete_expired_faces(session)
            by_subject: dict[tuple[str, uuid.UUID], list[str]] = {}
            for collection, subject_id, face_id in deleted:
                by_subject.setdefault((collection, subject_id), []).append(str(face_id))
            for (collection, subject_id), face_ids in sorted(by_subject.items()):
                await audit_sql.append(
                    session,
                    key_id=None,
                    action="retention.purge",
                    collection=collection,
                    subject_ids=[subject_id],
                    outcome="success",
                    details={"faces_deleted": len(face_ids), "face_ids": face_ids},
                )
        return PurgeReport(faces_deleted=len(deleted), subjects_affected=len(by_subject))


async def _existing_collection(session: AsyncSession, name: str) -> int:
    collection_id = await repository.collection_id(session, name)
    if collection_id is None:
        raise CollectionNotFoundError(f"No collection named {name!r}.", details={"collection": name})
    return collection_id


async def _visible_subject(session: AsyncSession, subject_id: uuid.UUID, principal: Principal) -> SubjectRecord:
    """The subject, or 404 when it does not exist or lies outside the key's collections."""
    record = await repository.get_subject(session, subject_id)
    if record is None or not principal.allows_collection(record.collection):
        raise SubjectNotFoundError(f"No subject with id {subject_id}.", details={"subject_id": str(subject_id)})
    return record
