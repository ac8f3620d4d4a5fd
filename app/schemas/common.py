"""Names, boxes and landmarks, errors and probes: what every part of the API shares."""

from __future__ import annotations

import json
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

COLLECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


def _printable_name(value: str) -> str:
    """Names are stripped and may not be blank or hold control characters (Postgres text cannot hold NUL)."""
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    if any(unicodedata.category(character) == "Cc" for character in value):
        raise ValueError("must not contain control characters")
    return value


def no_nul_in_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Postgres jsonb cannot hold U+0000 anywhere, in keys or values."""
    if value is not None and "\\u0000" in json.dumps(value):
        raise ValueError("must not contain the character U+0000")
    return value


SubjectName = Annotated[str, StringConstraints(max_length=200), AfterValidator(_printable_name)]
KeyName = Annotated[str, StringConstraints(max_length=100), AfterValidator(_printable_name)]
CollectionName = Annotated[str, StringConstraints(pattern=COLLECTION_PATTERN)]


class Point(BaseModel):
    x: float
    y: float


class Box(BaseModel):
    """A face's bounding box in pixels of the uploaded image (after EXIF rotation)."""

    x1: float
    y1: float
    x2: float
    y2: float


class Landmarks(BaseModel):
    """MTCNN's five facial landmarks, from the viewer's point of view."""

    left_eye: Point
    right_eye: Point
    nose: Point
    mouth_left: Point
    mouth_right: Point


class DetectedFaceRead(BaseModel):
    box: Box
    landmarks: Landmarks
    detection_probability: float = Field(description="MTCNN's confidence that this is a face, 0..1.")


class HealthResponse(BaseModel):
    status: str


class ReadinessResponse(BaseModel):
    status: str = Field(description="ready, or not_ready")
    checks: dict[str, str] = Field(description="model, database and schema: ok or what is wrong.")
    engine: dict[str, str] = Field(
        default_factory=dict,
        description="What runs: device, detector and embedder backends, and a fallback's reason if one is in use.",
    )


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code; see the README's error table.")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody
