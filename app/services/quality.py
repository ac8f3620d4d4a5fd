"""The enrolment quality gate, and which face of a photo an enrolment stores.

A photo's main face is its widest confident one. Faces much narrower than it (bystanders) and
faces that fail the quality gate do not make the photo "multiple faces": they are ignored and
reported with their reason. Two confident, usable faces of comparable size are still refused
(MULTIPLE_FACES) unless the caller asks for the largest.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.engine.faces import DetectedFace
from app.engine.quality import FaceQuality
from app.errors import FaceQualityError, MultipleFacesError, NoFaceDetectedError


class MultipleFacesPolicy(StrEnum):
    """What enrolment does with a photo that holds several faces of comparable size."""

    REJECT = "reject"
    LARGEST = "largest"


@dataclass(frozen=True)
class QualityLimits:
    min_face_px: float
    min_detection_probability: float
    min_sharpness: float
    max_roll_degrees: float
    max_yaw_offset: float
    min_brightness: float
    max_brightness: float
    max_clipped_fraction: float


@dataclass(frozen=True)
class AnalysedFace:
    """A detected face and its measured quality."""

    face: DetectedFace
    quality: FaceQuality


@dataclass(frozen=True)
class QualityFailure:
    rule: str
    value: float
    limit: float
    message: str

    def details(self) -> dict[str, Any]:
        return {"rule": self.rule, "value": round(self.value, 4), "limit": self.limit}


@dataclass(frozen=True)
class IgnoredFace:
    """A face an enrolment left out, and why: bystander, quality, low_probability or not_largest."""

    face: AnalysedFace
    reason: str
    message: str


@dataclass(frozen=True)
class EnrolmentChoice:
    face: AnalysedFace
    ignored: list[IgnoredFace]


# rule -> how a failure reads: the measured value, then the limit, fill the two {} in order.
_MESSAGES = {
    "min_face_px": "the face is {:.0f} px across; at least {:g} px are needed",
    "min_detection_probability": "the detection probability is {:.3f}; at least {:g} is needed",
    "min_sharpness": "the face's sharpness is {:.1f}; at least {:g} is needed (blurred, or a small face enlarged)",
    "max_roll_degrees": "the head is tilted {:.0f} degrees; at most {:g} are allowed",
    "max_yaw_offset": "the head is turned (yaw offset {:.2f}); at most {:g} is allowed",
    "min_brightness": "the face is too dark (mean grey level {:.0f}); at least {:g} is needed",
    "max_brightness": "the face is too bright (mean grey level {:.0f}); at most {:g} is allowed",
    "max_clipped_fraction": "{:.0%} of the face's pixels are clipped to black or white; at most {:.0%} may be",
}


def quality_failures(analysed: AnalysedFace, *, limits: QualityLimits) -> list[QualityFailure]:
    """Every rule the face breaks, most basic first: size and confidence, then exposure (a dark face is
    also a blurred one), then sharpness and pose."""
    face, quality = analysed.face, analysed.quality
    side = min(face.width, face.height)
    measured = [
        ("min_face_px", side, limits.min_face_px, side < limits.min_face_px),
        (
            "min_detection_probability",
            face.probability,
            limits.min_detection_probability,
            face.probability < limits.min_detection_probability,
        ),
        ("min_brightness", quality.brightness, limits.min_brightness, quality.brightness < limits.min_brightness),
        ("max_brightness", quality.brightness, limits.max_brightness, quality.brightness > limits.max_brightness),
        (
            "max_clipped_fraction",
            quality.clipped_fraction,
            limits.max_clipped_fraction,
            quality.clipped_fraction > limits.max_clipped_fraction,
        ),
        ("min_sharpness", quality.sharpness, limits.min_sharpness, quality.sharpness < limits.min_sharpness),
        (
            "max_roll_degrees",
            abs(quality.roll_degrees),
            limits.max_roll_degrees,
            abs(quality.roll_degrees) > limits.max_roll_degrees,
        ),
        (
            "max_yaw_offset",
            abs(quality.yaw_offset),
            limits.max_yaw_offset,
            abs(quality.yaw_offset) > limits.max_yaw_offset,
        ),
    ]
    return [
        QualityFailure(rule=rule, value=value, limit=limit, message=_MESSAGES[rule].format(value, limit))
        for rule, value, limit, failed in measured
        if failed
    ]


def choose_enrolment_face(
    faces: list[AnalysedFace],
    *,
    limits: QualityLimits,
    bystander_ratio: float,
    on_multiple_faces: MultipleFacesPolicy,
) -> EnrolmentChoice:
    """The one face an enrolment stores and the faces it ignores, or the error that says why there is none."""
    if not faces:
        raise NoFaceDetectedError("No face was found in the image; enrolment needs exactly one.")
    # Low-confidence detections (often background texture) do not count as a second face.
    confident = [item for item in faces if item.face.probability >= limits.min_detection_probability]
    main = max(confident or faces, key=lambda item: item.face.width)
    failures = quality_failures(main, limits=limits)
    if failures:
        first = failures[0]
        raise FaceQualityError(
            f"The face fails the enrolment quality gate: {first.message}.",
            details={**first.details(), "failures": [failure.details() for failure in failures]},
        )
    ignored: list[IgnoredFace] = []
    comparable: list[AnalysedFace] = []
    for item in faces:
        if item is main:
            continue
        if item.face.probability < limits.min_detection_probability:
            ignored.append(IgnoredFace(item, "low_probability", f"detection probability {item.face.probability:.3f}"))
        elif item.face.width < bystander_ratio * main.face.width:
            why = f"{item.face.width:.0f} px wide, under {bystander_ratio:g} x the main face's {main.face.width:.0f} px"
            ignored.append(IgnoredFace(item, "bystander", why))
        elif failed := quality_failures(item, limits=limits):
            ignored.append(IgnoredFace(item, "quality", f"below the quality gate: {failed[0].message}"))
        else:
            comparable.append(item)
    if comparable and on_multiple_faces is MultipleFacesPolicy.REJECT:
        raise MultipleFacesError(
            f"{len(comparable) + 1} faces of comparable size were found; enrolment needs one "
            "(or on_multiple_faces=largest).",
            details={"faces": [face_summary(item.face) for item in [main, *comparable]]},
        )
    ignored += [IgnoredFace(item, "not_largest", "on_multiple_faces=largest") for item in comparable]
    return EnrolmentChoice(face=main, ignored=ignored)


def face_summary(face: DetectedFace) -> dict[str, Any]:
    x1, y1, x2, y2 = (round(v, 2) for v in face.box)
    return {"box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}, "detection_probability": round(face.probability, 6)}
