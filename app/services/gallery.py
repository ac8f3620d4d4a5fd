"""Gallery management: collections, subjects and faces. Deletes remove embeddings for good."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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


class GalleryService:
    def __init__(self, *, database: Database) -> None:
        self._database = database

    async def list_collections(self) -> list[CollectionRecord]:
        async with self._database.transaction() as session:
            return await repository.list_collections(session)

    async def delete_collection(self, name: str) -> DeletionCounts:
        """Remove every subject and face of the collection; the default collection stays, empty."""
        async with self._database.transaction() as session:
            collection_id = await repository.collection_id(session, name)
            if collection_id is None:
                raise CollectionNotFoundError(f"No collection named {name!r}.", details={"collection": name})
            counts = await repository.delete_collection_contents(session, collection_id)
            if name != DEFAULT_COLLECTION:
                await repository.delete_collection(session, collection_id)
            return counts

    async def list_subjects(
        self, *, collection: str | None, limit: int, offset: int
    ) -> tuple[list[SubjectRecord], int]:
        async with self._database.transaction() as session:
            collection_id = None
            if collection is not None:
                collection_id = await repository.collection_id(session, collection)
                if collection_id is None:
                    raise CollectionNotFoundError(
                        f"No collection named {collection!r}.", details={"collection": collection}
                    )
            return await repository.list_subjects(session, collection_id=collection_id, limit=limit, offset=offset)

    async def get_subject(self, subject_id: uuid.UUID) -> SubjectRecord:
        async with self._database.transaction() as session:
            return await self._existing_subject(session, subject_id)

    async def update_subject(self, subject_id: uuid.UUID, *, changes: dict[str, Any]) -> SubjectRecord:
        async with self._database.transaction() as session:
            if changes:
                try:
                    found = await repository.update_subject(session, subject_id, values=changes)
                except repository.NameTakenError:
                    raise SubjectNameConflictError(
                        f"Another subject in this collection is already named {changes.get('name')!r}.",
                        details={"name": changes.get("name")},
                    ) from None
                if not found:
                    raise _subject_not_found(subject_id)
            return await self._existing_subject(session, subject_id)

    async def delete_subject(self, subject_id: uuid.UUID) -> int:
        """Delete the subject and its faces; the number of faces removed."""
        async with self._database.transaction() as session:
            deleted_faces = await repository.delete_subject(session, subject_id)
        if deleted_faces is None:
            raise _subject_not_found(subject_id)
        return deleted_faces

    async def list_faces(self, subject_id: uuid.UUID) -> list[FaceRecord]:
        async with self._database.transaction() as session:
            await self._existing_subject(session, subject_id)
            return await repository.list_faces(session, subject_id)

    async def delete_face(self, face_id: uuid.UUID) -> None:
        async with self._database.transaction() as session:
            if not await repository.delete_face(session, face_id):
                raise FaceNotFoundError(f"No face with id {face_id}.", details={"face_id": str(face_id)})

    @staticmethod
    async def _existing_subject(session: AsyncSession, subject_id: uuid.UUID) -> SubjectRecord:
        record = await repository.get_subject(session, subject_id)
        if record is None:
            raise _subject_not_found(subject_id)
        return record


def _subject_not_found(subject_id: uuid.UUID) -> SubjectNotFoundError:
    return SubjectNotFoundError(f"No subject with id {subject_id}.", details={"subject_id": str(subject_id)})
