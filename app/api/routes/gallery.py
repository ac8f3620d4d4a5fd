"""Gallery management: collections, subjects, faces."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api import convert
from app.api.deps import GalleryDep
from app.api.errors import error_responses
from app.schemas import (
    COLLECTION_PATTERN,
    CollectionDeleted,
    CollectionList,
    CollectionRead,
    FaceList,
    SubjectDeleted,
    SubjectPage,
    SubjectRead,
    SubjectUpdate,
)

router = APIRouter(tags=["gallery"])

DB_ERRORS = ("DATABASE_UNAVAILABLE", "VALIDATION_ERROR")
CollectionPath = Annotated[str, Path(pattern=COLLECTION_PATTERN)]


@router.get("/collections", response_model=CollectionList, responses=error_responses(*DB_ERRORS))
async def list_collections(gallery: GalleryDep) -> CollectionList:
    """List collections with their subject and face counts."""
    records = await gallery.list_collections()
    return CollectionList(items=[CollectionRead(**vars(record)) for record in records])


@router.delete(
    "/collections/{name}",
    response_model=CollectionDeleted,
    responses=error_responses("COLLECTION_NOT_FOUND", *DB_ERRORS),
)
async def delete_collection(name: CollectionPath, gallery: GalleryDep) -> CollectionDeleted:
    """Delete a collection with all its subjects and faces (the default one is emptied)."""
    counts = await gallery.delete_collection(name)
    return CollectionDeleted(collection=name, deleted_subjects=counts.subjects, deleted_faces=counts.faces)


@router.get("/subjects", response_model=SubjectPage, responses=error_responses("COLLECTION_NOT_FOUND", *DB_ERRORS))
async def list_subjects(
    gallery: GalleryDep,
    collection: Annotated[str | None, Query(pattern=COLLECTION_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SubjectPage:
    """List subjects, optionally of one collection, a page at a time."""
    records, total = await gallery.list_subjects(collection=collection, limit=limit, offset=offset)
    return SubjectPage(items=[convert.subject(r) for r in records], total=total, limit=limit, offset=offset)


@router.get(
    "/subjects/{subject_id}", response_model=SubjectRead, responses=error_responses("SUBJECT_NOT_FOUND", *DB_ERRORS)
)
async def get_subject(subject_id: uuid.UUID, gallery: GalleryDep) -> SubjectRead:
    """Read one subject."""
    return convert.subject(await gallery.get_subject(subject_id))


@router.patch(
    "/subjects/{subject_id}",
    response_model=SubjectRead,
    responses=error_responses("SUBJECT_NOT_FOUND", "SUBJECT_NAME_CONFLICT", *DB_ERRORS),
)
async def update_subject(subject_id: uuid.UUID, changes: SubjectUpdate, gallery: GalleryDep) -> SubjectRead:
    """Rename a subject or replace its metadata."""
    record = await gallery.update_subject(subject_id, changes=changes.model_dump(exclude_unset=True))
    return convert.subject(record)


@router.delete(
    "/subjects/{subject_id}", response_model=SubjectDeleted, responses=error_responses("SUBJECT_NOT_FOUND", *DB_ERRORS)
)
async def delete_subject(subject_id: uuid.UUID, gallery: GalleryDep) -> SubjectDeleted:
    """Delete a subject and all its faces for good."""
    return SubjectDeleted(id=subject_id, deleted_faces=await gallery.delete_subject(subject_id))


@router.get(
    "/subjects/{subject_id}/faces", response_model=FaceList, responses=error_responses("SUBJECT_NOT_FOUND", *DB_ERRORS)
)
async def list_faces(subject_id: uuid.UUID, gallery: GalleryDep) -> FaceList:
    """List a subject's enrolled faces (metadata only, never embeddings or pixels)."""
    return FaceList(items=[convert.stored_face(r) for r in await gallery.list_faces(subject_id)])


@router.delete("/faces/{face_id}", status_code=204, responses=error_responses("FACE_NOT_FOUND", *DB_ERRORS))
async def delete_face(face_id: uuid.UUID, gallery: GalleryDep) -> None:
    """Delete one face for good."""
    await gallery.delete_face(face_id)
