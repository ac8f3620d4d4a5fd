"""Domain results to response schemas."""

from __future__ import annotations

from collections.abc import Sequence

from app.db.records import FaceRecord, SubjectMatch, SubjectRecord
from app.schemas import Box, Candidate, DetectedFaceRead, Landmarks, Point, StoredFaceRead, SubjectRead
from app.services.face_engine import DetectedFace


def box(values: Sequence[float]) -> Box:
    x1, y1, x2, y2 = (round(float(v), 2) for v in values)
    return Box(x1=x1, y1=y1, x2=x2, y2=y2)


def landmarks(points: Sequence[tuple[float, float]]) -> Landmarks:
    left_eye, right_eye, nose, mouth_left, mouth_right = (
        Point(x=round(float(x), 2), y=round(float(y), 2)) for x, y in points
    )
    return Landmarks(left_eye=left_eye, right_eye=right_eye, nose=nose, mouth_left=mouth_left, mouth_right=mouth_right)


def detected_face(face: DetectedFace) -> DetectedFaceRead:
    return DetectedFaceRead(
        box=box(face.box), landmarks=landmarks(face.landmarks), detection_probability=round(face.probability, 6)
    )


def candidate(match: SubjectMatch) -> Candidate:
    return Candidate(subject_id=match.subject_id, subject=match.name, similarity=round(match.similarity, 6))


def subject(record: SubjectRecord) -> SubjectRead:
    return SubjectRead(
        id=record.id,
        name=record.name,
        collection=record.collection,
        metadata=record.metadata,
        face_count=record.face_count,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def stored_face(record: FaceRecord) -> StoredFaceRead:
    flat = record.landmarks
    return StoredFaceRead(
        id=record.id,
        subject_id=record.subject_id,
        box=box(record.box),
        landmarks=landmarks([(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]),
        detection_probability=round(record.detection_probability, 6),
        model_id=record.model_id,
        image_sha256=record.image_sha256,
        created_at=record.created_at,
    )
