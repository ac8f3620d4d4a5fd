"""Gallery management: collections, subjects, faces."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app.api import convert
from app.api.auth import ManageKey
from app.api.deps import GalleryDep
from app.api.errors import COMMON_ERRORS, error_responses
from app.schemas import (
    COLLECTION_PATTERN,
    CollectionDeleted,
    CollectionList,
    CollectionRead,
    CollectionUpdate,
    FaceList,
    SubjectDeleted,
    SubjectPage,
    SubjectRead,
    SubjectUpdate,
)
from app.services.gallery import SubjectPageRequest

router = APIRouter(tags=["gallery"])

CollectionPath = Annotated[str, Path(pattern=COLLECTION_PATTERN)]


def subject_page(
    collection: Annotated[str | None, Query(pattern=COLLECTION_PATTERN)] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=r"^[^\x00]*$", description="Only subjects whose name contains this, any case."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SubjectPageRequest:
    return SubjectPageRequest(collection=collection, name_contains=q, limit=limit, offset=offset)


@router.get("/collections", response_model=CollectionList, responses=error_responses(*COMMON_ERRORS))
async def list_collections(principal: ManageKey, gallery: GalleryDep) -> CollectionList:
    """List collections with their subject and face counts and retention."""
    records = await gallery.list_collections(principal=principal)
    return CollectionList(items=[convert.collection(record) for record in records])


@router.patch(
    "/collections/{name}",
    response_model=CollectionRead,
    responses=error_responses("BAD_REQUEST", "COLLECTION_NOT_FOUND", *COMMON_ERRORS),
)
async def update_collection(
    name: CollectionPath, changes: CollectionUpdate, principal: ManageKey, gallery: GalleryDep
) -> CollectionRead:
    """Set or clear a collection's retention period and its own match threshold."""
    values = changes.model_dump(exclude_unset=True)
    return convert.collection(await gallery.update_collection(name, changes=values, principal=principal))


@router.delete(
    "/collections/{name}",
    response_model=CollectionDeleted,
    responses=error_responses("COLLECTION_NOT_FOUND", *COMMON_ERRORS),
)
async def delete_collection(name: CollectionPath, principal: ManageKey, gallery: GalleryDep) -> CollectionDeleted:
    """Delete a collection with all its subjects and faces (the default one is emptied)."""
    counts = await gallery.delete_collection(name, principal=principal)
    return CollectionDeleted(collection=name, deleted_subjects=counts.subjects, deleted_faces=counts.faces)


@router.get("/subjects", response_model=SubjectPage, responses=error_responses("COLLECTION_NOT_FOUND", *COMMON_ERRORS))
async def list_subjects(
    principal: ManageKey, gallery: GalleryDep, page: Annotated[SubjectPageRequest, Depends(subject_page)]
) -> SubjectPage:
    """List subjects, optionally of one collection or matching a name, a page at a time."""
    records, total = await gallery.list_subjects(page, principal=principal)
    return SubjectPage(items=[convert.subject(r) for r in records], total=total, limit=page.limit, offset=page.offset)


@router.get(
    "/subjects/{subject_id}", response_model=SubjectRead, responses=error_responses("SUBJECT_NOT_FOUND", *COMMON_ERRORS)
)
async def get_subject(subject_id: uuid.UUID, principal: ManageKey, gallery: GalleryDep) -> SubjectRead:
    """Read one subject."""
    return convert.subject(await gallery.get_subject(subject_id, principal=principal))


@router.patch(
    "/subjects/{subject_id}",
    response_model=SubjectRead,
    responses=error_responses("BAD_REQUEST", "SUBJECT_NOT_FOUND", "SUBJECT_NAME_CONFLICT", *COMMON_ERRORS),
)
async def update_subject(
    subject_id: uuid.UUID, changes: SubjectUpdate, principal: ManageKey, gallery: GalleryDep
) -> SubjectRead:
    """Rename a subject or replace its metadata."""
    values = changes.model_dump(exclude_unset=True)
    return convert.subject(await gallery.update_subject(subject_id, changes=values, principal=principal))


@router.delete(
    "/subjects/{subject_id}",
    response_model=SubjectDeleted,
    responses=error_responses("SUBJECT_NOT_FOUND", *COMMON_ERRORS),
)
async def delete_subject(subject_id: uuid.UUID, principal: ManageKey, gallery: GalleryDep) -> SubjectDeleted:
    """Delete a subject and all its faces for good; returns the deletion receipt."""
    receipt = await gallery.delete_subject(subject_id, principal=principal)
    return convert.subject_deleted(receipt)


@router.get(
    "/subjects/{subject_id}/faces",
    response_model=FaceList,
    responses=error_responses("SUBJECT_NOT_FOUND", *COMMON_ERRORS),
)
async def list_faces(subject_id: uuid.UUID, principal: ManageKey, gallery: GalleryDep) -> FaceList:
    """List a subject's enrolled faces (metadata only, never embeddings or pixels)."""
    return FaceList(items=[convert.stored_face(r) for r in await gallery.list_faces(subject_id, principal=principal)])


@router.delete("/faces/{face_id}", status_code=204, responses=error_responses("FACE_NOT_FOUND", *COMMON_ERRORS))
async def delete_face(face_id: uuid.UUID, principal: ManageKey, gallery: GalleryDep) -> None:
    """Delete one face for good."""
    await gallery.delete_face(face_id, principal=principal)
