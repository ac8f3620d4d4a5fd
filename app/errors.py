"""Domain errors: each carries an HTTP status, a stable machine-readable code, and what to do about it.

One handler in `app.api.errors` renders them all as {"error": {"code", "message", "details"}}.
The README's error table is generated from `ERROR_CATALOGUE`, which is built from these classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class ErrorSpec:
    """What a caller sees for one error code, and what they should do about it."""

    code: str
    status: int
    meaning: str
    remedy: str


class FacerecError(Exception):
    """Base class of every error a caller can cause or see."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500
    meaning: ClassVar[str] = "An unexpected error; it has been logged."
    remedy: ClassVar[str] = "Retry; report it if it persists."
    retry_after_s: ClassVar[int | None] = None

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class WeightsUnavailableError(Exception):
    """The face model cannot be found, fetched, verified or run here; the service must not start."""


class BadRequestError(FacerecError):
    code, status = "BAD_REQUEST", 400
    meaning = "The request body could not be parsed (malformed multipart form or JSON)."
    remedy = "Send multipart/form-data (or JSON for PATCH) as shown in /docs."


class EmptyFileError(FacerecError):
    code, status, meaning, remedy = "EMPTY_FILE", 400, "The uploaded image has zero bytes.", "Send the image's bytes."


class InvalidImageError(FacerecError):
    code, status = "INVALID_IMAGE", 400
    meaning = "The file is JPEG, PNG or WEBP but cannot be decoded (truncated or corrupt)."
    remedy = "Re-encode or re-send the image."


class UnauthenticatedError(FacerecError):
    code, status = "UNAUTHENTICATED", 401
    meaning = "No API key, or an unknown or revoked one."
    remedy = "Send a valid key as `Authorization: Bearer <key>` or `X-API-Key: <key>`."

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class InsufficientScopeError(FacerecError):
    code, status = "INSUFFICIENT_SCOPE", 403
    meaning = "The key lacks the scope this route needs, or may not use this collection."
    remedy = "Use a key with the scope named in details, or ask an admin for one."


class ApiKeyNotFoundError(FacerecError):
    code, status, meaning, remedy = "API_KEY_NOT_FOUND", 404, "No API key with that id.", "List keys with GET /keys."


class RouteNotFoundError(FacerecError):
    code, status, meaning, remedy = "NOT_FOUND", 404, "No such route.", "Check the path against /docs."


class SubjectNotFoundError(FacerecError):
    code, status = "SUBJECT_NOT_FOUND", 404
    meaning, remedy = "No subject with that id or name.", "List subjects with GET /subjects."


class FaceNotFoundError(FacerecError):
    code, status = "FACE_NOT_FOUND", 404
    meaning, remedy = "No face with that id.", "List faces with GET /subjects/{id}/faces."


class CollectionNotFoundError(FacerecError):
    code, status = "COLLECTION_NOT_FOUND", 404
    meaning, remedy = "No collection with that name.", "List collections with GET /collections."


class MethodNotAllowedError(FacerecError):
    code, status = "METHOD_NOT_ALLOWED", 405
    meaning, remedy = "The route exists but not for this HTTP method.", "See /docs."


class SubjectNameConflictError(FacerecError):
    code, status = "SUBJECT_NAME_CONFLICT", 409
    meaning = "Another subject in the collection already has that name."
    remedy = "Choose another name, or merge by enrolling into the existing subject."


class IdempotencyConflictError(FacerecError):
    code, status = "IDEMPOTENCY_CONFLICT", 409
    meaning = "This Idempotency-Key was already used for a different request."
    remedy = "Use a new key for a new request; reuse a key only to retry the identical request."


class FaceMatchesOtherSubjectError(FacerecError):
    code, status = "FACE_MATCHES_OTHER_SUBJECT", 409
    meaning = (
        "The face matches another subject of the collection at or above the threshold: it may be the same "
        "person enrolled under a second name. details names that subject and the similarity."
    )
    remedy = (
        "Enrol the photo under the subject named in details, check the label, or send on_conflict=allow "
        "if these really are two people."
    )


class LowSimilarityToSubjectError(FacerecError):
    code, status = "LOW_SIMILARITY_TO_SUBJECT", 409
    meaning = (
        "The face is less similar to the subject's other faces than the threshold: it may be someone else "
        "(refused with on_low_similarity=reject; otherwise a warning on a successful enrolment)."
    )
    remedy = "Check that the photo shows this subject; send on_low_similarity=warn to enrol it anyway."


class PayloadTooLargeError(FacerecError):
    code, status = "PAYLOAD_TOO_LARGE", 413
    meaning = "The image or the request body is over the size limit."
    remedy = "Downscale or recompress the image (see FACEREC_MAX_IMAGE_BYTES)."


class UnsupportedMediaTypeError(FacerecError):
    code, status = "UNSUPPORTED_MEDIA_TYPE", 415
    meaning = "The file is not JPEG, PNG or WEBP (told by its bytes, not its name)."
    remedy = "Convert the image to JPEG, PNG or WEBP."


class FieldValidationError(FacerecError):
    """A request field that is well-formed but invalid in context (not caught by the schema)."""

    code, status = "VALIDATION_ERROR", 422
    meaning = "A field is missing or has an invalid value; details lists each problem."
    remedy = "Fix the fields named in details."

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, details={"errors": [{"field": field, "message": message, "type": "value_error"}]})


class ImageTooSmallError(FacerecError):
    code, status = "IMAGE_TOO_SMALL", 422
    meaning, remedy = "The image is smaller than the minimum side.", "Send a larger image."


class ImageTooLargeError(FacerecError):
    code, status = "IMAGE_TOO_LARGE", 422
    meaning = "The image has more pixels than allowed (decompression-bomb guard)."
    remedy = "Downscale the image (see FACEREC_MAX_IMAGE_PIXELS)."


class NoFaceDetectedError(FacerecError):
    code, status = "NO_FACE_DETECTED", 422
    meaning, remedy = "No face was found in the image.", "Send a photo with one clearly visible face."


class MultipleFacesError(FacerecError):
    code, status = "MULTIPLE_FACES", 422
    meaning = (
        "Enrolment needs one face and several of comparable size were found (bystanders, much smaller "
        "or below the quality gate, do not count); details lists their boxes."
    )
    remedy = "Crop to one face, or send on_multiple_faces=largest."


class FaceQualityError(FacerecError):
    code, status = "FACE_QUALITY_TOO_LOW", 422
    meaning = "The face failed an enrolment quality rule; details names the rule, the measured value and the limit."
    remedy = "Send a larger, sharper, well-lit, frontal photo (the limits are FACEREC_QUALITY_* settings)."


class RateLimitedError(FacerecError):
    code, status = "RATE_LIMITED", 429
    meaning = "The key has made too many requests of this kind."
    remedy = "Wait the Retry-After seconds; ask for a higher limit if this is normal load."

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, retry_after_s: int) -> None:
        super().__init__(message, details={**(details or {}), "retry_after_s": retry_after_s})
        self.wait_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.wait_s)}


class AuditUnavailableError(FacerecError):
    code, status, retry_after_s = "AUDIT_UNAVAILABLE", 503, 5
    meaning = "The audit log could not be written, so the request was not carried out (nothing was changed)."
    remedy = "Retry after the Retry-After seconds; operators: check the database's logs."


class DatabaseUnavailableError(FacerecError):
    code, status, retry_after_s = "DATABASE_UNAVAILABLE", 503, 5
    meaning, remedy = "The database cannot be reached right now.", "Retry after the Retry-After seconds."


class DeadlineExceededError(FacerecError):
    code, status, retry_after_s = "DEADLINE_EXCEEDED", 503, 2
    meaning = "The image was not processed within the request deadline (the service is busy)."
    remedy = "Retry after the Retry-After seconds, or add replicas."


class OverloadedError(FacerecError):
    code, status, retry_after_s = "OVERLOADED", 503, 1
    meaning = "Too many images are waiting for the face model."
    remedy = "Retry after the Retry-After seconds, or add replicas."


def _catalogue() -> dict[str, ErrorSpec]:
    classes: list[type[FacerecError]] = [FacerecError]
    for cls in classes:
        classes.extend(cls.__subclasses__())
    specs = (ErrorSpec(cls.code, cls.status, cls.meaning, cls.remedy) for cls in classes)
    return {spec.code: spec for spec in sorted(specs, key=lambda spec: (spec.status, spec.code))}


ERROR_CATALOGUE: dict[str, ErrorSpec] = _catalogue()
