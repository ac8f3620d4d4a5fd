"""Enrolment: one face stored under a subject, in one transaction with its audit entry."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.db.records import AuditEntry, NewFace
from app.db.session import Database
from app.engine.faces import DetectedFace
from app.errors import IdempotencyConflictError
from app.services.access import Principal
from app.services.analysis import Analysis, FaceAnalyser
from app.services.audit import AuditTrail
from app.services.policy import MultipleFacesPolicy, RecognitionPolicy, enrolment_face

IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class EnrollRequest:
    data: bytes
    subject: str
    collection: str
    metadata: dict[str, Any] | None = None
    on_multiple_faces: MultipleFacesPolicy = MultipleFacesPolicy.REJECT
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """What makes two enrolment requests the same request, for Idempotency-Key checks."""
        described = [
            hashlib.sha256(self.data).hexdigest(),
            self.subject,
            self.collection,
            self.metadata,
            self.on_multiple_faces.value,
        ]
        return hashlib.sha256(json.dumps(described, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class EnrollResult:
    subject_id: uuid.UUID
    subject: str
    collection: str
    face_id: uuid.UUID
    face: DetectedFace
    model_id: str
    subject_created: bool
    face_created: bool
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "subject_id": str(self.subject_id),
            "subject": self.subject,
            "collection": self.collection,
            "face_id": str(self.face_id),
            "box": list(self.face.box),
            "landmarks": [list(point) for point in self.face.landmarks],
            "probability": self.face.probability,
            "model_id": self.model_id,
            "subject_created": self.subject_created,
            "face_created": self.face_created,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, model_id: str) -> EnrollResult:
        x1, y1, x2, y2 = (float(v) for v in data["box"])
        face = DetectedFace(
            box=(x1, y1, x2, y2),
            landmarks=tuple((float(x), float(y)) for x, y in data["landmarks"]),
            probability=float(data["probability"]),
        )
        return cls(
            subject_id=uuid.UUID(data["subject_id"]),
            subject=data["subject"],
            collection=data["collection"],
            face_id=uuid.UUID(data["face_id"]),
            face=face,
            model_id=data.get("model_id", model_id),
            subject_created=bool(data["subject_created"]),
            face_created=bool(data["face_created"]),
            replayed=True,
        )

    def audited(self, entry: AuditEntry) -> AuditEntry:
        """The enrolment's audit entry, completed with what it did."""
        details = {"face_id": str(self.face_id), "created": self.face_created, "replayed": self.replayed}
        return dataclasses.replace(entry, subject_ids=(self.subject_id,), details=details)


class EnrollmentService:
    def __init__(
        self, *, analyser: FaceAnalyser, database: Database, policy: RecognitionPolicy, audit: AuditTrail
    ) -> None:
        self._analyser = analyser
        self._database = database
        self.policy = policy
        self._audit = audit

    async def enroll(self, request: EnrollRequest, *, principal: Principal) -> EnrollResult:
        """Store one face under the subject; a retried Idempotency-Key replays the first answer."""
        principal.require_collection(request.collection)
        entry = principal.audit("enroll", collection=request.collection)
        async with self._audit.recording_failures(entry):
            if request.idempotency_key is not None and (replay := await self._replay(request, entry=entry)):
                return replay
            choose = functools.partial(self._choose, on_multiple_faces=request.on_multiple_faces)
            analysis = await self._analyser.analyse(request.data, choose=choose)
            try:
                return await self._store(request, analysis=analysis, entry=entry)
            except _KeyTakenMeanwhile:
                # A concurrent request with the same key committed first; ours rolled back.
                replay = await self._replay(request, entry=entry)
                assert replay is not None
                return replay

    def _choose(self, faces: list[DetectedFace], *, on_multiple_faces: MultipleFacesPolicy) -> list[DetectedFace]:
        return [enrolment_face(faces, policy=self.policy, on_multiple_faces=on_multiple_faces)]

    async def _store(self, request: EnrollRequest, *, analysis: Analysis, entry: AuditEntry) -> EnrollResult:
        face = analysis.faces[0]
        async with self._database.transaction() as repository:
            collection_id = await repository.ensure_collection(request.collection)
            subject_id, subject_created = await repository.ensure_subject(
                collection_id=collection_id, name=request.subject, metadata=request.metadata
            )
            face_id, face_created = await repository.add_face(
                NewFace(
                    subject_id=subject_id,
                    collection_id=collection_id,
                    embedding=analysis.embeddings[0],
                    box=face.box,
                    landmarks=tuple(coordinate for point in face.landmarks for coordinate in point),
                    detection_probability=face.probability,
                    model_id=self._analyser.model_id,
                    image_sha256=hashlib.sha256(request.data).hexdigest(),
                )
            )
            result = EnrollResult(
                subject_id=subject_id,
                subject=request.subject,
                collection=request.collection,
                face_id=face_id,
                face=face,
                model_id=self._analyser.model_id,
                subject_created=subject_created,
                face_created=face_created,
            )
            if request.idempotency_key is not None and not await repository.save_idempotent_response(
                key=request.idempotency_key,
                request_sha256=request.fingerprint(),
                response=result.to_json(),
                keep_for=IDEMPOTENCY_WINDOW,
            ):
                raise _KeyTakenMeanwhile
            await repository.append_audit(result.audited(entry))
        return result

    async def _replay(self, request: EnrollRequest, *, entry: AuditEntry) -> EnrollResult | None:
        """The stored answer to this Idempotency-Key, audited as a replay; None when the key is new."""
        key = request.idempotency_key or ""
        async with self._database.transaction() as repository:
            stored = await repository.idempotent_response(key)
            if stored is None:
                return None
            fingerprint, response = stored
            if fingerprint != request.fingerprint():
                raise IdempotencyConflictError(
                    "This Idempotency-Key was already used for a different request.", details={"idempotency_key": key}
                )
            result = EnrollResult.from_json(response, model_id=self._analyser.model_id)
            await repository.append_audit(result.audited(entry))
        return result


class _KeyTakenMeanwhile(Exception):  # noqa: N818 - control flow inside enroll(), never escapes
    pass
