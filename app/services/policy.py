"""Recognition policy: the match threshold, the enrolment quality gate and the one-face rule."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.engine.faces import DetectedFace
from app.errors import FaceQualityError, MultipleFacesError, NoFaceDetectedError

DEFAULT_COLLECTION = "default"


class MultipleFacesPolicy(StrEnum):
    """What enrolment does with an image that holds several faces."""

    REJECT = "reject"
    LARGEST = "largest"


@dataclass(frozen=True)
class RecognitionPolicy:
    match_threshold: float
    min_face_px: int
    min_detection_probability: float
    hnsw_ef_search: int


def face_summary(face: DetectedFace) -> dict[str, Any]:
    x1, y1, x2, y2 = (round(v, 2) for v in face.box)
    return {"box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}, "detection_probability": round(face.probability, 6)}


def enrolment_face(
    faces: list[DetectedFace], *, policy: RecognitionPolicy, on_multiple_faces: MultipleFacesPolicy
) -> DetectedFace:
    """The one face an enrolment stores, or the error that says why there is none."""
    if not faces:
        raise NoFaceDetectedError("No face was found in the image; enrolment needs exactly one.")
    # Low-confidence detections (often background texture) do not count as a second face.
    confident = [face for face in faces if face.probability >= policy.min_detection_probability]
    if len(confident) > 1 and on_multiple_faces is MultipleFacesPolicy.REJECT:
        raise MultipleFacesError(
            f"{len(confident)} faces were found; enrolment needs exactly one (or on_multiple_faces=largest).",
            details={"faces": [face_summary(face) for face in confident]},
        )
    face = confident[0] if confident else faces[0]
    check_quality(face, policy=policy)
    return face


def check_quality(face: DetectedFace, *, policy: RecognitionPolicy) -> None:
    side = min(face.width, face.height)
    if side < policy.min_face_px:
        raise FaceQualityError(
            f"The face is {side:.0f} px across; enrolment needs at least {policy.min_face_px} px.",
            details={"rule": "min_face_px", "value": round(side, 1), "limit": policy.min_face_px},
        )
    if face.probability < policy.min_detection_probability:
        raise FaceQualityError(
            f"The detection probability is {face.probability:.3f}; enrolment needs at least "
            f"{policy.min_detection_probability}.",
            details={
                "rule": "min_detection_probability",
                "value": round(face.probability, 4),
                "limit": policy.min_detection_probability,
            },
        )
