"""Domain results to response schemas."""

from __future__ import annotations

from collections.abc import Sequence

from app.db.records import AuditRecord, CollectionRecord, FaceRecord, KeyRecord, SubjectMatch, SubjectRecord
from app.engine.faces import DetectedFace
from app.schemas import (
    AuditEntryRead,
    Box,
    Candidate,
    CollectionRead,
    DetectedFaceRead,
    DetectResponse,
    EnrollResponse,
    IdentifiedFaceRead,
    IdentifyResponse,
    IgnoredFaceRead,
    KeyIssued,
    KeyRead,
    Landmarks,
    MeasuredFaceRead,
    Point,
    QualityFailureRead,
    QualityRead,
    StoredFaceRead,
    SubjectDeleted,
    SubjectRead,
    VerifyResponse,
    WarningRead,
)
from app.services.access import IssuedKey
from app.services.analysis import Detection
from app.services.enrollment import EnrollResult
from app.services.gallery import DeletionReceipt
from app.services.quality import AnalysedFace, QualityLimits, quality_failures
from app.services.recognition import IdentifyResult, VerifyResult


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


def measured_face(item: AnalysedFace, *, limits: QualityLimits) -> MeasuredFaceRead:
    failures = quality_failures(item, limits=limits)
    quality = item.quality
    return MeasuredFaceRead(
        **detected_face(item.face).model_dump(),
        quality=QualityRead(
            sharpness=round(quality.sharpness, 3),
            roll_degrees=round(quality.roll_degrees, 2),
            yaw_offset=round(quality.yaw_offset, 4),
            brightness=round(quality.brightness, 2),
            clipped_fraction=round(quality.clipped_fraction, 4),
            passes=not failures,
            failures=[
                QualityFailureRead(rule=failure.rule, value=round(failure.value, 4), limit=failure.limit)
                for failure in failures
            ],
        ),
    )


def detect_response(detection: Detection, *, limits: QualityLimits) -> DetectResponse:
    return DetectResponse(
        width=detection.width,
        height=detection.height,
        faces=[measured_face(item, limits=limits) for item in detection.faces],
    )


def enroll_response(result: EnrollResult, *, limits: QualityLimits) -> EnrollResponse:
    return EnrollResponse(
        subject_id=result.subject_id,
        subject=result.subject,
        collection=result.collection,
        face_id=result.face_id,
        face=measured_face(result.face, limits=limits),
        model_id=result.model_id,
        created=result.face_created,
        subject_created=result.subject_created,
        ignored_faces=[
            IgnoredFaceRead(
                **measured_face(item.face, limits=limits).model_dump(), reason=item.reason, message=item.message
            )
            for item in result.ignored_faces
        ],
        warnings=[WarningRead(code=w.code, message=w.message, details=w.details) for w in result.warnings],
        threshold=result.threshold.value,
        threshold_source=result.threshold.source.value,
    )


def identify_response(result: IdentifyResult) -> IdentifyResponse:
    faces = [
        IdentifiedFaceRead(
            **detected_face(item.face).model_dump(),
            candidates=[candidate(c) for c in item.candidates],
            match=None if item.match is None else candidate(item.match),
        )
        for item in result.faces
    ]
    return IdentifyResponse(
        collection=result.collection,
        model_id=result.model_id,
        threshold=result.threshold.value,
        threshold_source=result.threshold.source.value,
        faces_detected=result.faces_detected,
        faces=faces,
    )


def verify_response(result: VerifyResult) -> VerifyResponse:
    return VerifyResponse(
        similarity=round(result.similarity, 6),
        threshold=result.threshold.value,
        threshold_source=result.threshold.source.value,
        same_person=result.same_person,
        face=detected_face(result.face),
        face_b=None if result.face_b is None else detected_face(result.face_b),
        subject_id=result.subject_id,
    )


def collection(record: CollectionRecord) -> CollectionRead:
    return CollectionRead(
        name=record.name,
        subject_count=record.subject_count,
        face_count=record.face_count,
        created_at=record.created_at,
        retention_days=record.retention_days,
        match_threshold=record.match_threshold,
    )


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


def key(record: KeyRecord) -> KeyRead:
    return KeyRead(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        scopes=list(record.scopes),
        collections=None if record.collections is None else list(record.collections),
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
    )


def key_issued(issued: IssuedKey) -> KeyIssued:
    """A new key's record and its secret, which this answer alone carries."""
    return KeyIssued(**key(issued.record).model_dump(), key=issued.token)


def subject_deleted(receipt: DeletionReceipt) -> SubjectDeleted:
    return SubjectDeleted(
        id=receipt.subject_id,
        name=receipt.subject,
        collection=receipt.collection,
        deleted_faces=receipt.faces_deleted,
        deleted_at=receipt.deleted_at,
    )


def audit_entry(record: AuditRecord) -> AuditEntryRead:
    return AuditEntryRead(
        id=record.id,
        at=record.at,
        key_id=record.key_id,
        action=record.action,
        collection=record.collection,
        subject_ids=list(record.subject_ids),
        outcome=record.outcome,
        details=record.details,
    )
