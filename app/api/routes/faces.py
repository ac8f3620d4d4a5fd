"""Face endpoints: detect, enroll, identify, verify."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from app.api import convert
from app.api.auth import DetectKey, EnrollKey, IdentifyKey, VerifyKey
from app.api.deps import EnrollmentDep, RecognitionDep
from app.api.errors import error_responses
from app.api.forms import enroll_form, identify_form, image_form, verify_form
from app.schemas import DetectResponse, EnrollResponse, IdentifyResponse, VerifyResponse
from app.services.enrollment import EnrollRequest
from app.services.recognition import IdentifyRequest, VerifyRequest

router = APIRouter(tags=["faces"])

AUTH_ERRORS = ("UNAUTHENTICATED", "INSUFFICIENT_SCOPE", "RATE_LIMITED", "AUDIT_UNAVAILABLE")
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
ENROLL_ERRORS = (
    "NO_FACE_DETECTED",
    "MULTIPLE_FACES",
    "FACE_QUALITY_TOO_LOW",
    "IDEMPOTENCY_CONFLICT",
    "FACE_MATCHES_OTHER_SUBJECT",
    "LOW_SIMILARITY_TO_SUBJECT",
)


@router.post("/detect", response_model=DetectResponse, responses=error_responses(*IMAGE_ERRORS))
async def detect(
    principal: DetectKey, data: Annotated[bytes, Depends(image_form)], recognition: RecognitionDep
) -> DetectResponse:
    """Find every face in a photo, with landmarks and quality; stores nothing."""
    return convert.detect_response(await recognition.detect(data), limits=recognition.policy.quality)


@router.post(
    "/enroll",
    response_model=EnrollResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": EnrollResponse, "description": "This image was already enrolled for the subject."},
        **error_responses(*IMAGE_ERRORS, *ENROLL_ERRORS, "DATABASE_UNAVAILABLE"),
    },
)
async def enroll(
    principal: EnrollKey,
    request: Annotated[EnrollRequest, Depends(enroll_form)],
    enrollment: EnrollmentDep,
    response: Response,
) -> EnrollResponse:
    """Store one face under a subject's name; creates the subject on first enrolment."""
    result = await enrollment.enroll(request, principal=principal)
    response.status_code = status.HTTP_201_CREATED if result.face_created else status.HTTP_200_OK
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return convert.enroll_response(result, limits=enrollment.policy.quality)


@router.post(
    "/identify",
    response_model=IdentifyResponse,
    responses=error_responses(*IMAGE_ERRORS, "COLLECTION_NOT_FOUND", "DATABASE_UNAVAILABLE"),
)
async def identify(
    principal: IdentifyKey, request: Annotated[IdentifyRequest, Depends(identify_form)], recognition: RecognitionDep
) -> IdentifyResponse:
    """Say who is in a photo: for every face, the nearest subjects and a match or null (unknown)."""
    return convert.identify_response(await recognition.identify(request, principal=principal))


@router.post(
    "/verify",
    response_model=VerifyResponse,
    responses=error_responses(
        *IMAGE_ERRORS, "NO_FACE_DETECTED", "SUBJECT_NOT_FOUND", "COLLECTION_NOT_FOUND", "DATABASE_UNAVAILABLE"
    ),
)
async def verify(
    principal: VerifyKey, request: Annotated[VerifyRequest, Depends(verify_form)], recognition: RecognitionDep
) -> VerifyResponse:
    """Say whether a photo shows the same person as a second photo or an enrolled subject."""
    return convert.verify_response(await recognition.verify(request, principal=principal))
