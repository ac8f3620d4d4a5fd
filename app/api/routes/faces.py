"""Face endpoints: detect, enroll, identify, verify."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Response, UploadFile, status

from app.api import convert
from app.api.audit import audited
from app.api.auth import DetectKey, EnrollKey, IdentifyKey, VerifyKey
from app.api.deps import RecognitionDep, RuntimeDep
from app.api.errors import error_responses
from app.api.uploads import read_image
from app.db.models import DEFAULT_COLLECTION
from app.errors import FieldValidationError
from app.schemas import (
    COLLECTION_PATTERN,
    DetectResponse,
    EnrollResponse,
    IdentifiedFaceRead,
    IdentifyResponse,
    SubjectName,
    VerifyResponse,
    no_nul_in_json,
)
from app.services.recognition import MultipleFacesPolicy

router = APIRouter(tags=["faces"])

AUTH_ERRORS = ("UNAUTHENTICATED", "INSUFFICIENT_SCOPE", "RATE_LIMITED")
IMAGE_ERRORS = (
    *AUTH_ERRORS,
    "BAD_REQUEST",
    "EMPTY_FILE",
    "INVALID_IMAGE",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "VALIDATION_ERROR",
    "IMAGE_TOO_SMALL",
    "IMAGE_TOO_LARGE",
    "OVERLOADED",
    "DEADLINE_EXCEEDED",
)

ImageFile = Annotated[UploadFile, File(description="JPEG, PNG or WEBP photo.")]
CollectionField = Annotated[str, Form(pattern=COLLECTION_PATTERN, description="Collection (gallery) name.")]
ThresholdField = Annotated[
    float | None, Form(ge=-1.0, le=1.0, description="Cosine similarity needed for a match; default from settings.")
]
SubjectField = Annotated[
    SubjectName, Form(description="The person's name, unique in the collection (1-200 characters).")
]


def _parse_metadata(raw: str | None) -> dict[str, Any] | None:
    if raw is None or raw == "":
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise FieldValidationError("metadata must be a JSON object.", field="metadata")
    try:
        return no_nul_in_json(value)
    except ValueError:
        raise FieldValidationError("metadata must not contain the character U+0000.", field="metadata") from None


@router.post("/detect", response_model=DetectResponse, responses=error_responses(*IMAGE_ERRORS))
async def detect(
    image: ImageFile, principal: DetectKey, recognition: RecognitionDep, runtime: RuntimeDep
) -> DetectResponse:
    """Find every face in a photo, with landmarks; stores nothing."""
    data = await read_image(image, max_bytes=runtime.settings.max_image_bytes)
    width, height, faces = await recognition.detect(data)
    return DetectResponse(width=width, height=height, faces=[convert.detected_face(face) for face in faces])


@router.post(
    "/enroll",
    response_model=EnrollResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": EnrollResponse, "description": "This image was already enrolled for the subject."},
        **error_responses(
            *IMAGE_ERRORS,
            "NO_FACE_DETECTED",
            "MULTIPLE_FACES",
            "FACE_QUALITY_TOO_LOW",
            "IDEMPOTENCY_CONFLICT",
            "DATABASE_UNAVAILABLE",
        ),
    },
)
async def enroll(
    image: ImageFile,
    subject: SubjectField,
    principal: EnrollKey,
    recognition: RecognitionDep,
    runtime: RuntimeDep,
    response: Response,
    collection: CollectionField = DEFAULT_COLLECTION,
    metadata: Annotated[
        str | None, Form(max_length=16384, description="JSON object stored with a new subject.")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            description="Retry-safe key: a repeat with the same key returns the first answer and stores nothing new.",
        ),
    ] = None,
    on_multiple_faces: Annotated[
        MultipleFacesPolicy, Form(description="reject (422) or enrol the largest face.")
    ] = MultipleFacesPolicy.REJECT,
) -> EnrollResponse:
    """Store one face under a subject's name; creates the subject on first enrolment."""
    principal.require_collection(collection)
    async with audited(runtime, principal, "enroll", collection=collection) as note:
        data = await read_image(image, max_bytes=runtime.settings.max_image_bytes)
        result = await recognition.enroll(
            data=data,
            subject=subject,
            collection=collection,
            metadata=_parse_metadata(metadata),
            on_multiple_faces=on_multiple_faces,
            idempotency_key=idempotency_key,
        )
        note.subject_ids.append(result.subject_id)
        note.details.update(face_id=str(result.face_id), created=result.face_created, replayed=result.replayed)
    if not result.face_created:
        response.status_code = status.HTTP_200_OK
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return EnrollResponse(
        subject_id=result.subject_id,
        subject=result.subject,
        collection=result.collection,
        face_id=result.face_id,
        face=convert.detected_face(result.face),
        model_id=recognition.model_id,
        created=result.face_created,
        subject_created=result.subject_created,
    )


@router.post(
    "/identify",
    response_model=IdentifyResponse,
    responses=error_responses(*IMAGE_ERRORS, "COLLECTION_NOT_FOUND", "DATABASE_UNAVAILABLE"),
)
async def identify(
    image: ImageFile,
    principal: IdentifyKey,
    recognition: RecognitionDep,
    runtime: RuntimeDep,
    collection: CollectionField = DEFAULT_COLLECTION,
    top_k: Annotated[int | None, Form(ge=1, le=100, description="Candidates per face (default 3).")] = None,
    threshold: ThresholdField = None,
    max_faces: Annotated[int | None, Form(ge=1, le=100, description="Largest faces to identify (default 10).")] = None,
) -> IdentifyResponse:
    """Say who is in a photo: for every face, the nearest subjects and a match or null (unknown)."""
    settings = runtime.settings
    principal.require_collection(collection)
    async with audited(runtime, principal, "identify", collection=collection) as note:
        data = await read_image(image, max_bytes=settings.max_image_bytes)
        result = await recognition.identify(
            data=data,
            collection=collection,
            top_k=top_k or settings.default_top_k,
            threshold=threshold,
            max_faces=max_faces or settings.default_max_faces,
        )
        note.subject_ids.extend(item.match.subject_id for item in result.faces if item.match is not None)
        note.details.update(faces=len(result.faces), matched=len(note.subject_ids))
    faces = [
        IdentifiedFaceRead(
            **convert.detected_face(item.face).model_dump(),
            candidates=[convert.candidate(c) for c in item.candidates],
            match=None if item.match is None else convert.candidate(item.match),
        )
        for item in result.faces
    ]
    return IdentifyResponse(
        collection=result.collection,
        model_id=result.model_id,
        threshold=result.threshold,
        faces_detected=result.faces_detected,
        faces=faces,
    )


@router.post(
    "/verify",
    response_model=VerifyResponse,
    responses=error_responses(
        *IMAGE_ERRORS, "NO_FACE_DETECTED", "SUBJECT_NOT_FOUND", "COLLECTION_NOT_FOUND", "DATABASE_UNAVAILABLE"
    ),
)
async def verify(
    image: ImageFile,
    principal: VerifyKey,
    recognition: RecognitionDep,
    runtime: RuntimeDep,
    image_b: Annotated[UploadFile | None, File(description="Second photo to compare with.")] = None,
    subject: Annotated[SubjectName | None, Form(description="Or: a subject to compare with.")] = None,
    collection: CollectionField = DEFAULT_COLLECTION,
    threshold: ThresholdField = None,
) -> VerifyResponse:
    """Say whether a photo shows the same person as a second photo or an enrolled subject."""
    max_bytes = runtime.settings.max_image_bytes
    if (image_b is None) == (subject is None):
        raise FieldValidationError(
            "Send exactly one of image_b (a second photo) and subject (an enrolled name).", field="image_b"
        )
    if subject is not None:
        principal.require_collection(collection)
    async with audited(runtime, principal, "verify", collection=collection if subject else None) as note:
        data = await read_image(image, max_bytes=max_bytes)
        if image_b is not None:
            data_b = await read_image(image_b, max_bytes=max_bytes)
            result = await recognition.verify_pair(data=data, data_b=data_b, threshold=threshold)
        else:
            assert subject is not None
            result = await recognition.verify_subject(
                data=data, subject=subject, collection=collection, threshold=threshold
            )
            note.subject_ids.extend([result.subject_id] if result.subject_id else [])
        note.details.update(same_person=result.same_person)
    return VerifyResponse(
        similarity=round(result.similarity, 6),
        threshold=result.threshold,
        same_person=result.same_person,
        face=convert.detected_face(result.face),
        face_b=None if result.face_b is None else convert.detected_face(result.face_b),
        subject_id=result.subject_id,
    )
