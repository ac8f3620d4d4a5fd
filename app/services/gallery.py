"""Gallery management: collections, subjects and faces.

Deletes remove embeddings for good, and each one writes its receipt to the audit log in the
same transaction: there is never a deletion without its record, nor a record without the deletion.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from app.db.records import CollectionRecord, DeletionCounts, FaceRecord, SubjectRecord
from app.db.repository import NameTakenError, Repository
from app.db.session import Database
from app.errors import CollectionNotFoundError, FaceNotFoundError, SubjectNameConflictError, SubjectNotFoundError
from app.services.access import SYSTEM, Principal
from app.services.audit import AuditTrail
from app.services.policy import DEFAULT_COLLECTION


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


@dataclass(frozen=True)
class SubjectPageRequest:
    collection: str | None = None
    name_contains: str | None = None
    limit: int = 100
    offset: int = 0


class GalleryService:
    def __init__(self, *, database: Database, audit: AuditTrail) -> None:
        self._database = database
        self._audit = audit

    async def list_collections(self, *, principal: Principal) -> list[CollectionRecord]:
        async with self._database.transaction() as repository:
            records = await repository.list_collections()
        return [record for record in records if principal.allows_collection(record.name)]

    async def update_collection(
        self, name: str, *, changes: dict[str, Any], principal: Principal, create: bool = False
    ) -> CollectionRecord:
        """Set or clear the collection's retention_days and match_threshold (the keys of `changes`);
        `create` makes the collection first when there is none of that name."""
        principal.require_collection(name)
        async with self._database.transaction() as repository:
            if create:
                await repository.ensure_collection(name)
            collection_id = await _existing_collection(repository, name=name)
            if changes.get("match_threshold") is not None:
                changes = {**changes, "match_threshold": float32_at_least(changes["match_threshold"])}
            await repository.update_collection(collection_id, values=changes)
            await repository.append_audit(principal.audit("collection.update", collection=name, details=changes))
            record = await repository.collection(name)
        assert record is not None
        return record

    async def delete_collection(self, name: str, *, principal: Principal) -> DeletionCounts:
        """Remove every subject and face of the collection; the default collection stays, empty."""
        principal.require_collection(name)
        async with self._database.transaction() as repository:
            collection_id = await _existing_collection(repository, name=name)
            counts = await repository.delete_collection_contents(collection_id)
            if name != DEFAULT_COLLECTION:
                await repository.delete_collection(collection_id)
            details = {"subjects_deleted": counts.subjects, "faces_deleted": counts.faces}
            await repository.append_audit(principal.audit("collection.delete", collection=name, details=details))
            return counts

    async def list_subjects(
        self, request: SubjectPageRequest, *, principal: Principal
    ) -> tuple[list[SubjectRecord], int]:
        async with self._database.transaction() as repository:
            collection_id = None
            if request.collection is not None:
                principal.require_collection(request.collection)
                collection_id = await _existing_collection(repository, name=request.collection)
            return await repository.list_subjects(
                collection_id=collection_id,
                allowed_collections=principal.collections,
                name_contains=request.name_contains,
                limit=request.limit,
                offset=request.offset,
            )

    async def get_subject(self, subject_id: uuid.UUID, *, principal: Principal) -> SubjectRecord:
        async with self._database.transaction() as repository:
            return await _visible_subject(repository, subject_id=subject_id, principal=principal)

    async def update_subject(
        self, subject_id: uuid.UUID, *, changes: dict[str, Any], principal: Principal
    ) -> SubjectRecord:
        entry = principal.audit("subject.update", subject_ids=[subject_id], details={"fields": sorted(changes)})
        async with self._audit.recording_failures(entry), self._database.transaction() as repository:
            await _visible_subject(repository, subject_id=subject_id, principal=principal)
            if changes:
                try:
                    await repository.update_subject(subject_id, values=changes)
                except NameTakenError:
                    raise SubjectNameConflictError(
                        f"Another subject in this collection is already named {changes.get('name')!r}.",
                        details={"name": changes.get("name")},
                    ) from None
            record = await _visible_subject(repository, subject_id=subject_id, principal=principal)
            await repository.append_audit(dataclasses.replace(entry, collection=record.collection))
            return record

    async def delete_subject(self, subject_id: uuid.UUID, *, principal: Principal) -> DeletionReceipt:
        """Delete the subject and its faces, and write the deletion receipt to the audit log."""
        async with self._database.transaction() as repository:
            subject = await _visible_subject(repository, subject_id=subject_id, principal=principal)
            faces_deleted = await repository.delete_subject(subject_id) or 0
            receipt = DeletionReceipt(
                subject_id=subject_id,
                subject=subject.name,
                collection=subject.collection,
                faces_deleted=faces_deleted,
                deleted_at=datetime.now(UTC),
            )
            details = {"faces_deleted": faces_deleted, "deleted_at": receipt.deleted_at.isoformat()}
            entry = principal.audit(
                "subject.delete", collection=subject.collection, subject_ids=[subject_id], details=details
            )
            await repository.append_audit(entry)
        return receipt

    async def list_faces(self, subject_id: uuid.UUID, *, principal: Principal) -> list[FaceRecord]:
        async with self._database.transaction() as repository:
            await _visible_subject(repository, subject_id=subject_id, principal=principal)
            return await repository.list_faces(subject_id)

    async def delete_face(self, face_id: uuid.UUID, *, principal: Principal) -> None:
        async with self._database.transaction() as repository:
            owner = await repository.face_owner(face_id)
            if owner is None or not principal.allows_collection(owner[1]):
                raise FaceNotFoundError(f"No face with id {face_id}.", details={"face_id": str(face_id)})
            await repository.delete_face(face_id)
            details = {"face_id": str(face_id)}
            await repository.append_audit(
                principal.audit("face.delete", collection=owner[1], subject_ids=[owner[0]], details=details)
            )

    async def purge_expired(self) -> PurgeReport:
        """Delete faces past their collection's retention period, auditing each subject's deletions."""
        async with self._database.transaction() as repository:
            deleted = await repository.delete_expired_faces()
            by_subject: dict[tuple[str, uuid.UUID], list[str]] = defaultdict(list)
            for face in deleted:
                by_subject[(face.collection, face.subject_id)].append(str(face.face_id))
            for (collection, subject_id), face_ids in sorted(by_subject.items()):
                details = {"faces_deleted": len(face_ids), "face_ids": face_ids}
                entry = SYSTEM.audit(
                    "retention.purge", collection=collection, subject_ids=[subject_id], details=details
                )
                await repository.append_audit(entry)
        return PurgeReport(faces_deleted=len(deleted), subjects_affected=len(by_subject))


def float32_at_least(value: float) -> float:
    """The smallest float32 (the column's type) not below value: a stored threshold never admits more."""
    stored = np.float32(value)
    return float(stored if stored >= value else np.nextafter(stored, np.float32(np.inf)))


async def _existing_collection(repository: Repository, *, name: str) -> int:
    collection_id = await repository.collection_id(name)
    if collection_id is None:
        raise CollectionNotFoundError(f"No collection named {name!r}.", details={"collection": name})
    return collection_id


async def _visible_subject(repository: Repository, *, subject_id: uuid.UUID, principal: Principal) -> SubjectRecord:
    """The subject, or 404 when it does not exist or lies outside the key's collections."""
    record = await repository.get_subject(subject_id)
    if record is None or not principal.allows_collection(record.collection):
        raise SubjectNotFoundError(f"No subject with id {subject_id}.", details={"subject_id": str(subject_id)})
    return record
