"""Detect, enroll, identify and verify: the face endpoints' answers. None carries an embedding."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.schemas.common import DetectedFaceRead

ThresholdSourceName = Literal["request", "collection", "default"]
THRESHOLD_SOURCE = "Where the threshold came from: the request, the collection's own, or FACEREC_MATCH_THRESHOLD."


class QualityFailureRead(BaseModel):
    rule: str = Field(description="The FACEREC_QUALITY_* (or size and confidence) rule, e.g. min_sharpness.")
    value: float
    limit: float


class QualityRead(BaseModel):
    """How usable the face is for recognition, measured on the 160x160 crop the embedder sees."""

    sharpness: float = Field(description="Variance of the Laplacian of the grey crop; blurred faces score low.")
    roll_degrees: float = Field(description="Tilt of the eye line from horizontal.")
    yaw_offset: float = Field(
        description="The nose's offset from the eyes' midpoint in half eye distances: 0 frontal, about 1 in profile."
    )
    brightness: float = Field(description="Mean grey level of the crop, 0-255.")
    clipped_fraction: float = Field(description="Share of the crop's pixels clipped to black or white.")
    passes: bool = Field(description="Whether the face passes the enrolment quality gate.")
    failures: list[QualityFailureRead] = Field(description="The rules it fails, with value and limit.")


class MeasuredFaceRead(DetectedFaceRead):
    quality: QualityRead


class DetectResponse(BaseModel):
    width: int = Field(description="Image width in pixels after EXIF rotation.")
    height: int
    faces: list[MeasuredFaceRead] = Field(description="Every face found, largest first, with its quality.")


class IgnoredFaceRead(MeasuredFaceRead):
    reason: Literal["bystander", "quality", "low_probability", "not_largest"] = Field(
        description="Why the enrolment left this face out."
    )
    message: str


class WarningRead(BaseModel):
    code: str = Field(description="e.g. LOW_SIMILARITY_TO_SUBJECT (see the README's error table).")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class EnrollResponse(BaseModel):
    subject_id: uuid.UUID
    subject: str
    collection: str
    face_id: uuid.UUID
    face: MeasuredFaceRead
    model_id: str = Field(description="The embedding model the stored face belongs to.")
    created: bool = Field(description="False when this image was already enrolled for the subject.")
    subject_created: bool = Field(description="True when this enrolment created the subject.")
    ignored_faces: list[IgnoredFaceRead] = Field(
        description="Other faces in the photo that the enrolment left out (bystanders, faces below the quality gate)."
    )
    warnings: list[WarningRead] = Field(description="Problems to look at on a successful enrolment.")
    threshold: float = Field(description="The threshold the duplicate and consistency guards used.")
    threshold_source: ThresholdSourceName = Field(description=THRESHOLD_SOURCE)


class Candidate(BaseModel):
    subject_id: uuid.UUID
    subject: str
    similarity: float = Field(description="Cosine similarity of the best face of the subject, -1..1.")


class IdentifiedFaceRead(DetectedFaceRead):
    candidates: list[Candidate] = Field(description="Nearest subjects, best first, one entry per subject.")
    match: Candidate | None = Field(
        description="The best candidate if its similarity reaches the threshold; null means unknown."
    )


class IdentifyResponse(BaseModel):
    collection: str
    model_id: str
    threshold: float
    threshold_source: ThresholdSourceName = Field(description=THRESHOLD_SOURCE)
    faces_detected: int = Field(description="Faces found in the image; `faces` holds at most max_faces of them.")
    faces: list[IdentifiedFaceRead] = Field(description="Identified faces, largest first.")


class VerifyResponse(BaseModel):
    similarity: float = Field(description="Cosine similarity, -1..1.")
    threshold: float
    threshold_source: ThresholdSourceName = Field(description=THRESHOLD_SOURCE)
    same_person: bool = Field(description="similarity >= threshold.")
    face: DetectedFaceRead = Field(description="The face compared in `image` (its largest).")
    face_b: DetectedFaceRead | None = Field(default=None, description="The face compared in `image_b`.")
    subject_id: uuid.UUID | None = Field(default=None, description="The subject compared against.")
