"""The multipart forms of the face endpoints, parsed into the services' requests.

Each parser is a dependency: its parameters are the form's documented fields, and it reads the
uploads (never past the per-image byte cap) before the route runs.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import File, Form, Header, UploadFile

from app.api.deps import SettingsDep
from app.errors import FieldValidationError, PayloadTooLargeError
from app.schemas import COLLECTION_PATTERN, SubjectName, no_nul_in_json
from app.services.enrollment import EnrollRequest
from app.services.policy import DEFAULT_COLLECTION, ConflictPolicy, LowSimilarityPolicy
from app.services.quality import MultipleFacesPolicy
from app.services.recognition import IdentifyRequest, VerifyRequest

ImageFile = Annotated[UploadFile, File(description="JPEG, PNG or WEBP photo.")]
CollectionField = Annotated[str, Form(pattern=COLLECTION_PATTERN, description="Collection (gallery) name.")]
ThresholdField = Annotated[
    float | None,
    Form(
        ge=-1.0,
        le=1.0,
        description="Cosine similarity needed for a match; default: the collection's, else the service's.",
    ),
]
SubjectField = Annotated[
    SubjectName, Form(description="The person's name, unique in the collection (1-200 characters).")
]
MetadataField = Annotated[str | None, Form(max_length=16384, description="JSON object stored with a new subject.")]
IdempotencyHeader = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        description="Retry-safe key: a repeat with the same key returns the first answer and stores nothing new.",
    ),
]
MultipleFacesField = Annotated[
    MultipleFacesPolicy,
    Form(description="reject (422) or enrol the largest of several faces of comparable size (bystanders never count)."),
]
ConflictField = Annotated[
    ConflictPolicy,
    Form(description="reject (409 FACE_MATCHES_OTHER_SUBJECT) or allow a face that matches another subject."),
]
LowSimilarityField = Annotated[
    LowSimilarityPolicy,
    Form(description="warn, or reject (409), when the face is unlike the subject's other faces."),
]
GuardThresholdField = Annotated[
    float | None,
    Form(ge=-1.0, le=1.0, description="Threshold for the duplicate and consistency guards; default: the collection's."),
]
TopKField = Annotated[int | None, Form(ge=1, le=100, description="Candidates per face (default 3).")]
MaxFacesField = Annotated[int | None, Form(ge=1, le=100, description="Largest faces to identify (default 10).")]


async def read_image(upload: UploadFile, *, max_bytes: int) -> bytes:
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"The image {upload.filename or ''} is over {max_bytes} bytes.".replace("  ", " "),
            details={"max_bytes": max_bytes},
        )
    return data


def parse_metadata(raw: str | None) -> dict[str, Any] | None:
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


async def image_form(image: ImageFile, settings: SettingsDep) -> bytes:
    return await read_image(image, max_bytes=settings.max_image_bytes)


async def enroll_form(
    image: ImageFile,
    subject: SubjectField,
    settings: SettingsDep,
    collection: CollectionField = DEFAULT_COLLECTION,
    metadata: MetadataField = None,
    on_multiple_faces: MultipleFacesField = MultipleFacesPolicy.REJECT,
    on_conflict: ConflictField = ConflictPolicy.REJECT,
    on_low_similarity: LowSimilarityField = LowSimilarityPolicy.WARN,
    threshold: GuardThresholdField = None,
    idempotency_key: IdempotencyHeader = None,
) -> EnrollRequest:
    return EnrollRequest(
        data=await read_image(image, max_bytes=settings.max_image_bytes),
        subject=subject,
        collection=collection,
        metadata=parse_metadata(metadata),
        on_multiple_faces=on_multiple_faces,
        on_conflict=on_conflict,
        on_low_similarity=on_low_similarity,
        threshold=threshold,
        idempotency_key=idempotency_key,
    )


async def identify_form(
    image: ImageFile,
    settings: SettingsDep,
    collection: CollectionField = DEFAULT_COLLECTION,
    top_k: TopKField = None,
    threshold: ThresholdField = None,
    max_faces: MaxFacesField = None,
) -> IdentifyRequest:
    return IdentifyRequest(
        data=await read_image(image, max_bytes=settings.max_image_bytes),
        collection=collection,
        top_k=top_k or settings.default_top_k,
        max_faces=max_faces or settings.default_max_faces,
        threshold=threshold,
    )


async def verify_form(
    image: ImageFile,
    settings: SettingsDep,
    image_b: Annotated[UploadFile | None, File(description="Second photo to compare with.")] = None,
    subject: Annotated[SubjectName | None, Form(description="Or: a subject to compare with.")] = None,
    collection: CollectionField = DEFAULT_COLLECTION,
    threshold: ThresholdField = None,
) -> VerifyRequest:
    if (image_b is None) == (subject is None):
        raise FieldValidationError(
            "Send exactly one of image_b (a second photo) and subject (an enrolled name).", field="image_b"
        )
    max_bytes = settings.max_image_bytes
    return VerifyRequest(
        data=await read_image(image, max_bytes=max_bytes),
        data_b=None if image_b is None else await read_image(image_b, max_bytes=max_bytes),
        subject=subject,
        collection=collection,
        threshold=threshold,
    )
