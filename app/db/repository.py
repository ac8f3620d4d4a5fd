"""Every SQL statement the service runs, named by intent. Callers own the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, Row, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Collection, Face, IdempotencyKey, Subject
from app.db.records import CollectionRecord, DeletionCounts, FaceRecord, SubjectRecord

Vector = npt.NDArray[np.float32]


class NameTakenError(Exception):
    """A subject rename collided with the unique (collection, name) constraint."""


async def collection_id(session: AsyncSession, name: str) -> int | None:
    return await session.scalar(select(Collection.id).where(Collection.name == name))


async def ensure_collection(session: AsyncSession, name: str) -> int:
    """The collection's id, creating it if needed; safe under concurrent first use."""
    statement = (
        pg_insert(Collection)
        .values(name=name)
        .on_conflict_do_update(index_elements=[Collection.name], set_={"name": name})
        .returning(Collection.id)
    )
    return int((await session.execute(statement)).scalar_one())


async def ensure_subject(
    session: AsyncSession, *, collection_id: int, name: str, metadata: dict[str, Any] | None
) -> tuple[uuid.UUID, bool]:
    """The subject's id and whether it was created now; INSERT ... ON CONFLICT, never check-then-insert."""
    created_id = await session.scalar(
        pg_insert(Subject)
        .values(id=uuid.uuid4(), collection_id=collection_id, name=name, metadata_=metadata)
        .on_conflict_do_nothing(constraint="uq_subjects_collection_name")
        .returning(Subject.id)
    )
    if created_id is not None:
        return created_id, True
    existing = await session.scalar(
        select(Subject.id).where(Subject.collection_id == collection_id, Subject.name == name)
    )
    if existing is None:  # deleted between the two statements: try once more
        return await ensure_subject(session, collection_id=collection_id, name=name, metadata=metadata)
    return existing, False


async def add_face(
    session: AsyncSession,
    *,
    subject_id: uuid.UUID,
    collection_id: int,
    embedding: Vector,
    box: Sequence[float],
    landmarks: Sequence[float],
    detection_probability: float,
    model_id: str,
    image_sha256: str,
) -> tuple[uuid.UUID, bool]:
    """The face's id and whether it is new: the same image for the same subject is stored once."""
    created_id = await session.scalar(
        pg_insert(Face)
        .values(
            id=uuid.uuid4(),
            subject_id=subject_id,
            collection_id=collection_id,
            embedding=embedding,
            box=list(box),
            landmarks=list(landmarks),
            detection_probability=detection_probability,
            model_id=model_id,
            image_sha256=image_sha256,
        )
        .on_conflict_do_nothing(constraint="uq_faces_subject_model_image")
        .returning(Face.id)
    )
    if created_id is not None:
        await session.execute(update(Subject).where(Subject.id == subject_id).values(updated_at=func.now()))
        return created_id, True
    existing = await session.scalar(
        select(Face.id).where(
            Face.subject_id == subject_id, Face.model_id == model_id, Face.image_sha256 == image_sha256
        )
    )
    assert existing is not None  # the conflicting row is visible: it blocked our insert
    return existing, False


async def best_subject_similarity(
    session: AsyncSession, *, subject_id: uuid.UUID, model_id: str, embedding: Vector
) -> float | None:
    """The highest cosine similarity between the embedding and the subject's faces of this model."""
    distance = await session.scalar(
        select(func.min(Face.embedding.cosine_distance(embedding))).where(
            Face.subject_id == subject_id, Face.model_id == model_id
        )
    )
    return None if distance is None else 1.0 - float(distance)


async def list_collections(session: AsyncSession) -> list[CollectionRecord]:
    subject_counts = select(Subject.collection_id, func.count().label("n")).group_by(Subject.collection_id).subquery()
    face_counts = select(Face.collection_id, func.count().label("n")).group_by(Face.collection_id).subquery()
    statement = (
        select(
            Collection.name,
            Collection.created_at,
            Collection.retention_days,
            func.coalesce(subject_counts.c.n, 0).label("subjects"),
            func.coalesce(face_counts.c.n, 0).label("faces"),
        )
        .outerjoin(subject_counts, subject_counts.c.collection_id == Collection.id)
        .outerjoin(face_counts, face_counts.c.collection_id == Collection.id)
        .order_by(Collection.name)
    )
    return [
        CollectionRecord(
            name=row.name,
            subject_count=row.subjects,
            face_count=row.faces,
            created_at=row.created_at,
            retention_days=row.retention_days,
        )
        for row in (await session.execute(statement)).all()
    ]


async def delete_collection_contents(session: AsyncSession, collection_id: int) -> DeletionCounts:
    faces = await session.execute(delete(Face).where(Face.collection_id == collection_id))
    subjects = await session.execute(delete(Subject).where(Subject.collection_id == collection_id))
    return DeletionCounts(subjects=_rowcount(subjects), faces=_rowcount(faces))


async def delete_collection(session: AsyncSession, collection_id: int) -> None:
    await session.execute(delete(Collection).where(Collection.id == collection_id))


def _subject_query() -> Any:
    face_count = select(func.count()).where(Face.subject_id == Subject.id).correlate(Subject).scalar_subquery()
    return select(Subject, Collection.name.label("collection"), face_count.label("face_count")).join(
        Collection, Collection.id == Subject.collection_id
    )


def _subject_record(row: Row[Any]) -> SubjectRecord:
    subject: Subject = row[0]
    return SubjectRecord(
        id=subject.id,
        name=subject.name,
        collection=row.collection,
        metadata=subject.metadata_,
        face_count=row.face_count,
        created_at=subject.created_at,
        updated_at=subject.updated_at,
    )


async def list_subjects(
    session: AsyncSession,
    *,
    collection_id: int | None,
    allowed_collections: frozenset[str] | None,
    limit: int,
    offset: int,
    name_contains: str | None = None,
) -> tuple[list[SubjectRecord], int]:
    """A page of subjects ordered by name, and the total count; name_contains matches case-insensitively."""
    filters: list[ColumnElement[bool]] = []
    if collection_id is not None:
        filters.append(Subject.collection_id == collection_id)
    if allowed_collections is not None:
        filters.append(Collection.name.in_(sorted(allowed_collections)))
    if name_contains:
        # % and _ in the search text are literal characters, not wildcards.
        escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        filters.append(Subject.name.ilike(f"%{escaped}%", escape="\\"))
    query = _subject_query().where(*filters)
    in_collection = Collection.id == Subject.collection_id
    count_query = select(func.count()).select_from(Subject).join(Collection, in_collection).where(*filters)
    rows = (
        await session.execute(query.order_by(Collection.name, Subject.name, Subject.id).limit(limit).offset(offset))
    ).all()
    total = int(await session.scalar(count_query) or 0)
    return [_subject_record(row) for row in rows], total


async def get_subject(session: AsyncSession, subject_id: uuid.UUID) -> SubjectRecord | None:
    row = (await session.execute(_subject_query().where(Subject.id == subject_id))).first()
    return None if row is None else _subject_record(row)


async def find_subject_id(session: AsyncSession, *, collection_id: int, name: str) -> uuid.UUID | None:
    return await session.scalar(select(Subject.id).where(Subject.collection_id == collection_id, Subject.name == name))


async def update_subject(session: AsyncSession, subject_id: uuid.UUID, *, values: dict[str, Any]) -> bool:
    """Apply the changed fields; False when the subject does not exist."""
    columns = {("metadata_" if key == "metadata" else key): value for key, value in values.items()}
    try:
        async with session.begin_nested():
            result = await session.execute(
                update(Subject).where(Subject.id == subject_id).values(**columns, updated_at=func.now())
            )
    except IntegrityError:
        raise NameTakenError from None
    return _rowcount(result) > 0


async def delete_subject(session: AsyncSession, subject_id: uuid.UUID) -> int | None:
    """Delete the subject and its faces; the number of faces removed, or None if there was no subject."""
    faces = await session.execute(delete(Face).where(Face.subject_id == subject_id))
    subjects = await session.execute(delete(Subject).where(Subject.id == subject_id))
    return _rowcount(faces) if _rowcount(subjects) else None


async def list_faces(session: AsyncSession, subject_id: uuid.UUID) -> list[FaceRecord]:
    columns = (
        Face.id,
        Face.subject_id,
        Face.box,
        Face.landmarks,
        Face.detection_probability,
        Face.model_id,
        Face.image_sha256,
        Face.created_at,
    )
    rows = (
        await session.execute(select(*columns).where(Face.subject_id == subject_id).order_by(Face.created_at, Face.id))
    ).all()
    return [
        FaceRecord(
            id=row.id,
            subject_id=row.subject_id,
            box=tuple(row.box),
            landmarks=tuple(row.landmarks),
            detection_probability=row.detection_probability,
            model_id=row.model_id,
            image_sha256=row.image_sha256,
            created_at=row.created_at,
        )
        for row in rows
    ]


async def face_owner(session: AsyncSession, face_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
    """The subject id and collection name of a face."""
    row = (
        await session.execute(
            select(Face.subject_id, Collection.name)
            .join(Collection, Collection.id == Face.collection_id)
            .where(Face.id == face_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def delete_face(session: AsyncSession, face_id: uuid.UUID) -> bool:
    result = await session.execute(delete(Face).where(Face.id == face_id))
    return _rowcount(result) > 0


async def idempotent_response(session: AsyncSession, key: str) -> tuple[str, dict[str, Any]] | None:
    """The request fingerprint and stored answer for an Idempotency-Key, if it was seen."""
    row = (
        await session.execute(
            select(IdempotencyKey.request_sha256, IdempotencyKey.response).where(IdempotencyKey.key == key)
        )
    ).first()
    return None if row is None else (row.request_sha256, row.response)


async def save_idempotent_response(
    session: AsyncSession, *, key: str, request_sha256: str, response: dict[str, Any], keep_for: timedelta
) -> bool:
    """Store the answer under the key; False when another request stored one first."""
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < func.now() - keep_for))
    stored = await session.scalar(
        pg_insert(IdempotencyKey)
        .values(key=key, request_sha256=request_sha256, response=response)
        .on_conflict_do_nothing(index_elements=[IdempotencyKey.key])
        .returning(IdempotencyKey.key)
    )
    return stored is not None


async def set_retention(session: AsyncSession, collection_id: int, *, days: int | None) -> None:
    await session.execute(update(Collection).where(Collection.id == collection_id).values(retention_days=days))


async def delete_expired_faces(session: AsyncSession) -> list[tuple[str, uuid.UUID, uuid.UUID]]:
    """Delete faces older than their collection's retention; (collection, subject id, face id) of each."""
    expired = (
        select(Face.id)
        .join(Collection, Collection.id == Face.collection_id)
        .where(
            Collection.retention_days.is_not(None),
            Face.created_at < func.now() - func.make_interval(0, 0, 0, Collection.retention_days),
        )
    )
    deleted = await session.execute(
        delete(Face).where(Face.id.in_(expired)).returning(Face.collection_id, Face.subject_id, Face.id)
    )
    rows = deleted.all()
    names: dict[int, str] = {row[0]: row[1] for row in await session.execute(select(Collection.id, Collection.name))}
    return [(names[row.collection_id], row.subject_id, row.id) for row in rows]


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
