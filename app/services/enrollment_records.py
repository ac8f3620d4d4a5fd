"""What an enrolment is asked and what it answers, in the form an Idempotency-Key replay stores."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.db.records import AuditEntry
from app.engine.faces import DetectedFace
from app.engine.quality import FaceQuality
from app.services.policy import ConflictPolicy, LowSimilarityPolicy, Threshold, ThresholdSource
from app.services.quality import AnalysedFace, IgnoredFace, MultipleFacesPolicy


@dataclass(frozen=True)
class EnrollRequest:
    data: bytes
    subject: str
    collection: str
    metadata: dict[str, Any] | None = None
    on_multiple_faces: MultipleFacesPolicy = MultipleFacesPolicy.REJECT
    on_conflict: ConflictPolicy = ConflictPolicy.REJECT
    on_low_similarity: LowSimilarityPolicy = LowSimilarityPolicy.WARN
    threshold: float | None = None
    idempotency_key: str | None = None

    @functools.cached_property
    def image_sha256(self) -> str:
        """The upload's SHA-256, stored with the face and part of the fingerprint: hashed once."""
        return hashlib.sha256(self.data).hexdigest()

    @functools.cached_property
    def fingerprint(self) -> str:
        """What makes two enrolment requests the same request, for Idempotency-Key checks."""
        described = [
            self.image_sha256,
            self.subject,
            self.collection,
            self.metadata,
            self.on_multiple_faces.value,
            self.on_conflict.value,
            self.on_low_similarity.value,
            self.threshold,
        ]
        return hashlib.sha256(json.dumps(described, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class EnrollWarning:
    """Something the caller should look at, on an enrolment that succeeded."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnrollResult:
    subject_id: uuid.UUID
    subject: str
    collection: str
    face_id: uuid.UUID
    face: AnalysedFace
    model_id: str
    subject_created: bool
    face_created: bool
    threshold: Threshold
    ignored_faces: list[IgnoredFace] = field(default_factory=list)
    warnings: list[EnrollWarning] = field(default_factory=list)
    replayed: bool = False

    def audited(self, entry: AuditEntry) -> AuditEntry:
        """The enrolment's audit entry, completed with what it did."""
        details: dict[str, Any] = {
            "face_id": str(self.face_id),
            "created": self.face_created,
            "replayed": self.replayed,
        }
        if self.warnings:
            details["warnings"] = [warning.code for warning in self.warnings]
        return dataclasses.replace(entry, subject_ids=(self.subject_id,), details=details)

    def to_json(self) -> dict[str, Any]:
        return {
            "subject_id": str(self.subject_id),
            "subject": self.subject,
            "collection": self.collection,
            "face_id": str(self.face_id),
            "face": _face_json(self.face),
            "model_id": self.model_id,
            "subject_created": self.subject_created,
            "face_created": self.face_created,
            "threshold": {"value": self.threshold.value, "source": self.threshold.source.value},
            "ignored_faces": [
                {"face": _face_json(item.face), "reason": item.reason, "message": item.message}
                for item in self.ignored_faces
            ],
            "warnings": [dataclasses.asdict(warning) for warning in self.warnings],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EnrollResult:
        return cls(
            subject_id=uuid.UUID(data["subject_id"]),
            subject=data["subject"],
            collection=data["collection"],
            face_id=uuid.UUID(data["face_id"]),
            face=_face_from_json(data["face"]),
            model_id=data["model_id"],
            subject_created=bool(data["subject_created"]),
            face_created=bool(data["face_created"]),
            threshold=Threshold(float(data["threshold"]["value"]), ThresholdSource(data["threshold"]["source"])),
            ignored_faces=[
                IgnoredFace(_face_from_json(item["face"]), item["reason"], item["message"])
                for item in data["ignored_faces"]
            ],
            warnings=[EnrollWarning(**warning) for warning in data["warnings"]],
            replayed=True,
        )


def _face_json(item: AnalysedFace) -> dict[str, Any]:
    return {
        "box": list(item.face.box),
        "landmarks": [list(point) for point in item.face.landmarks],
        "probability": item.face.probability,
        "quality": dataclasses.asdict(item.quality),
    }


def _face_from_json(data: dict[str, Any]) -> AnalysedFace:
    x1, y1, x2, y2 = (float(v) for v in data["box"])
    face = DetectedFace(
        box=(x1, y1, x2, y2),
        landmarks=tuple((float(x), float(y)) for x, y in data["landmarks"]),
        probability=float(data["probability"]),
    )
    return AnalysedFace(face=face, quality=FaceQuality(**data["quality"]))
