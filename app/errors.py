"""Domain errors: each carries an HTTP status and a stable machine-readable code.

One handler in `app.api.errors` renders them all as {"error": {"code", "message", "details"}}.
The README's error table is generated from `ERROR_CATALOGUE`, so keep both in one place.
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


ERROR_CATALOGUE: dict[str, ErrorSpec] = {
    spec.code: spec
    for spec in (
        ErrorSpec(
            "BAD_REQUEST",
            400,
            "The request body could not be parsed (malformed multipart form or JSON).",
            "Send multipart/form-data (or JSON for PATCH) as shown in /docs.",
        ),
        ErrorSpec("EMPTY_FILE", 400, "The uploaded image has zero bytes.", "Send the image's bytes."),
        ErrorSpec(
            "INVALID_IMAGE",
            400,
            "The file is JPEG, PNG or WEBP but cannot be decoded (truncated or corrupt).",
            "Re-encode or re-send the image.",
        ),
        ErrorSpec(
            "UNAUTHENTICATED",
            401,
            "No API key, or an unknown or revoked one.",
            "Send a valid key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        ),
        ErrorSpec(
            "INSUFFICIENT_SCOPE",
            403,
            "The key lacks the scope this route needs, or may not use this collection.",
            "Use a key with the scope named in details, or ask an admin for one.",
        ),
        ErrorSpec("API_KEY_NOT_FOUND", 404, "No API key with that id.", "List keys with GET /keys."),
        ErrorSpec("NOT_FOUND", 404, "No such route.", "Check the path against /docs."),
        ErrorSpec("SUBJECT_NOT_FOUND", 404, "No subject with that id or name.", "List subjects with GET /subjects."),
        ErrorSpec("FACE_NOT_FOUND", 404, "No face with that id.", "List faces with GET /subjects/{id}/faces."),
        ErrorSpec(
            "COLLECTION_NOT_FOUND", 404, "No collection with that name.", "List collections with GET /collections."
        ),
        ErrorSpec("METHOD_NOT_ALLOWED", 405, "The route exists but not for this HTTP method.", "See /docs."),
        ErrorSpec(
            "SUBJECT_NAME_CONFLICT",
            409,
            "Another subject in the collection already has that name.",
            "Choose another name, or merge by enrolling into the existing subject.",
        ),
        ErrorSpec(
            "IDEMPOTENCY_CONFLICT",
            409,
            "This Idempotency-Key was already used for a different request.",
            "Use a new key for a new request; reuse a key only to retry the identical request.",
        ),
        ErrorSpec(
            "PAYLOAD_TOO_LARGE",
            413,
            "The image or the request body is over the size limit.",
            "Downscale or recompress the image (see FACEREC_MAX_IMAGE_BYTES).",
        ),
        ErrorSpec(
            "UNSUPPORTED_MEDIA_TYPE",
            415,
            "The file is not JPEG, PNG or WEBP (told by its bytes, not its name).",
            "Convert the image to JPEG, PNG or WEBP.",
        ),
        ErrorSpec(
            "VALIDATION_ERROR",
            422,
            "A field is missing or has an invalid value; details lists each problem.",
            "Fix the fields named in details.",
        ),
        ErrorSpec("IMAGE_TOO_SMALL", 422, "The image is smaller than the minimum side.", "Send a larger image."),
        ErrorSpec(
            "IMAGE_TOO_LARGE",
            422,
            "The image has more pixels than allowed (decompression-bomb guard).",
            "Downscale the image (see FACEREC_MAX_IMAGE_PIXELS).",
        ),
        ErrorSpec(
            "NO_FACE_DETECTED", 422, "No face was found in the image.", "Send a photo with one clearly visible face."
        ),
        ErrorSpec(
            "MULTIPLE_FACES",
            422,
            "Enrolment needs exactly one face and several were found; details lists their boxes.",
            "Crop to one face, or send on_multiple_faces=largest.",
        ),
        ErrorSpec(
            "FACE_QUALITY_TOO_LOW",
            422,
            "The face failed an enrolment quality rule; details names the rule, the value and the limit.",
            "Send a larger, sharper, frontal photo.",
        ),
        ErrorSpec(
            "RATE_LIMITED",
            429,
            "The key has made too many requests of this kind.",
            "Wait the Retry-After seconds; ask for a higher limit if this is normal load.",
        ),
        ErrorSpec(
            "INTERNAL_ERROR", 500, "An unexpected error; it has been logged.", "Retry; report it if it persists."
        ),
        ErrorSpec(
            "DATABASE_UNAVAILABLE",
            503,
            "The database cannot be reached right now.",
            "Retry after the Retry-After seconds.",
        ),
        ErrorSpec(
            "DEADLINE_EXCEEDED",
            503,
            "The image was not processed within the request deadline (the service is busy).",
            "Retry after the Retry-After seconds, or add replicas.",
        ),
        ErrorSpec(
            "OVERLOADED",
            503,
            "Too many images are waiting for the face model.",
            "Retry after the Retry-After seconds, or add replicas.",
        ),
    )
}


class FacerecError(Exception):
    """Base class of every error a caller can cause or see."""

    code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    @property
    def status(self) -> int:
        return ERROR_CATALOGUE[self.code].status

    @property
    def headers(self) -> dict[str, str]:
        return {}


class EmptyFileError(FacerecError):
    """The upload has no bytes."""

    code = "EMPTY_FILE"


class InvalidImageError(FacerecError):
    """A supported format that does not decode."""

    code = "INVALID_IMAGE"


class UnsupportedMediaTypeError(FacerecError):
    """Not JPEG, PNG or WEBP."""

    code = "UNSUPPORTED_MEDIA_TYPE"


class PayloadTooLargeError(FacerecError):
    """Too many bytes."""

    code = "PAYLOAD_TOO_LARGE"


class ImageTooSmallError(FacerecError):
    """Width or height under the minimum."""

    code = "IMAGE_TOO_SMALL"


class ImageTooLargeError(FacerecError):
    """Too many pixels."""

    code = "IMAGE_TOO_LARGE"


class NoFaceDetectedError(FacerecError):
    """No face where one is needed."""

    code = "NO_FACE_DETECTED"


class MultipleFacesError(FacerecError):
    """Several faces where exactly one is needed."""

    code = "MULTIPLE_FACES"


class FaceQualityError(FacerecError):
    """A face that fails an enrolment quality rule."""

    code = "FACE_QUALITY_TOO_LOW"


class SubjectNotFoundError(FacerecError):
    """Unknown subject."""

    code = "SUBJECT_NOT_FOUND"


class FaceNotFoundError(FacerecError):
    """Unknown face."""

    code = "FACE_NOT_FOUND"


class CollectionNotFoundError(FacerecError):
    """Unknown collection."""

    code = "COLLECTION_NOT_FOUND"


class SubjectNameConflictError(FacerecError):
    """A rename onto a name already taken."""

    code = "SUBJECT_NAME_CONFLICT"


class IdempotencyConflictError(FacerecError):
    """An Idempotency-Key reused for a different request."""

    code = "IDEMPOTENCY_CONFLICT"


class DatabaseUnavailableError(FacerecError):
    """The database cannot be reached."""

    code = "DATABASE_UNAVAILABLE"
    retry_after_s = 5

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class WeightsUnavailableError(Exception):
    """The embedding model's weights cannot be found, fetched or verified; the service must not start."""


class OverloadedError(FacerecError):
    """The inference queue is full."""

    code = "OVERLOADED"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class FieldValidationError(FacerecError):
    """A request field that is well-formed but invalid in context (not caught by the schema)."""

    code = "VALIDATION_ERROR"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, details={"errors": [{"field": field, "message": message, "type": "value_error"}]})


class DeadlineExceededError(FacerecError):
    """The request ran past its deadline."""

    code = "DEADLINE_EXCEEDED"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}


class UnauthenticatedError(FacerecError):
    """Missing, unknown or revoked API key."""

    code = "UNAUTHENTICATED"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class InsufficientScopeError(FacerecError):
    """A valid key without the scope or collection."""

    code = "INSUFFICIENT_SCOPE"


class ApiKeyNotFoundError(FacerecError):
    """Unknown API key id."""

    code = "API_KEY_NOT_FOUND"


class RateLimitedError(FacerecError):
    """Too many requests for one key and scope."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, retry_after_s: int) -> None:
        super().__init__(message, details={**(details or {}), "retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}
