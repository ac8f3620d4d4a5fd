"""The use cases (detect, enroll, identify, verify) and their policy: thresholds, quality gates, one-face rules."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import numpy as np
import torch
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import nearest, repository
from app.db.records import SubjectMatch
from app.db.session import Database
from app.errors import (
    CollectionNotFoundError,
    FaceQualityError,
    IdempotencyConflictError,
    MultipleFacesError,
    NoFaceDetectedError,
    SubjectNotFoundError,
)
from app.services.batching import EmbeddingBatcher
from app.services.face_engine import CROP_SIZE, DetectedFace, Embeddings, FaceEngine, face_crops
from app.services.images import ImageLimits, decode_image
from app.services.inference import InferencePool


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


@dataclass(frozen=True)
class Analysis:
    """What the model saw in one image: its size, the faces kept (largest first) and their embeddings."""

    width: int
    height: int
    faces: list[DetectedFace]
    embeddings: Embeddings


@dataclass(frozen=True)
class EnrollResult:
    subject_id: uuid.UUID
    subject: str
    collection: str
    face_id: uuid.UUID
    face: DetectedFace
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
            "subject_created": self.subject_created,
            "face_created": self.face_created,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool) -> EnrollResult:
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
            subject_created=bool(data["subject_created"]),
            face_created=bool(data["face_created"]),
            replayed=replayed,
        )


class _KeyTakenMeanwhile(Exception):  # noqa: N818 - control flow inside enroll(), never escapes
    pass


IDEMPOTENCY_WINDOW = timedelta(hours=24)


def _fingerprint(
    data_sha256: str, subject: str, collection: str, metadata: dict[str, Any] | None, policy: MultipleFacesPolicy
) -> str:
    """What makes two enrolment requests the same request, for Idempotency-Key checks."""
    described = json.dumps(
        [data_sha256, subject, collection, metadata, policy.value], sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(described.encode()).hexdigest()


@dataclass(frozen=True)
class IdentifiedFace:
    face: DetectedFace
    candidates: list[SubjectMatch]
    match: SubjectMatch | None


@dataclass(frozen=True)
class IdentifyResult:
    collection: str
    threshold: float
    model_id: str
    faces_detected: int
    faces: list[IdentifiedFace]


@dataclass(frozen=True)
class VerifyResult:
    similarity: float
    threshold: float
    same_person: bool
    face: DetectedFace
    face_b: DetectedFace | None
    subject_id: uuid.UUID | None


def _face_summary(face: DetectedFace) -> dict[str, Any]:
    x1, y1, x2, y2 = (round(v, 2) for v in face.box)
    return {"box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}, "detection_probability": round(face.probability, 6)}


def image_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RecognitionService:
    """Face use cases over one engine, one inference pool and one database."""

    def __init__(
        self,
        *,
        engine: FaceEngine,
        pool: InferencePool,
        database: Database,
        policy: RecognitionPolicy,
        limits: ImageLimits,
        batcher: EmbeddingBatcher,
    ) -> None:
        self._engine = engine
        self._pool = pool
        self._database = database
        self.policy = policy
        self._limits = limits
        self._batcher = batcher

    @property
    def model_id(self) -> str:
        return self._engine.model_id

    # --- model work, in the pool -------------------------------------------------------------

    def _detect_blocking(self, data: bytes) -> tuple[int, int, list[DetectedFace]]:
        image = decode_image(data, limits=self._limits)
        return image.width, image.height, self._engine.detect(image)

    def _detect_and_crop_blocking(
        self, data: bytes, *, max_faces: int, enrolment: MultipleFacesPolicy | None
    ) -> tuple[int, int, list[DetectedFace], torch.Tensor]:
        image = decode_image(data, limits=self._limits)
        faces = self._engine.detect(image)
        if enrolment is not None:
            faces = [self._enrolment_face(faces, enrolment)]
        faces = faces[:max_faces]
        crops = face_crops(image, faces) if faces else torch.zeros((0, 3, CROP_SIZE, CROP_SIZE))
        return image.width, image.height, faces, crops

    async def _analyse(self, data: bytes, *, max_faces: int, enrolment: MultipleFacesPolicy | None) -> Analysis:
        """Detection in the pool, then embedding batched with other requests' faces."""
        width, height, faces, crops = await self._pool.run(
            self._detect_and_crop_blocking, data, max_faces=max_faces, enrolment=enrolment
        )
        return Analysis(width, height, faces, await self._batcher.embed(crops))

    def _enrolment_face(self, faces: list[DetectedFace], policy: MultipleFacesPolicy) -> DetectedFace:
        if not faces:
            raise NoFaceDetectedError("No face was found in the image; enrolment needs exactly one.")
        # Low-confidence detections (often background texture) do not count as a second face.
        confident = [face for face in faces if face.probability >= self.policy.min_detection_probability]
        if len(confident) > 1 and policy is MultipleFacesPolicy.REJECT:
            raise MultipleFacesError(
                f"{len(confident)} faces were found; enrolment needs exactly one (or on_multiple_faces=largest).",
                details={"faces": [_face_summary(face) for face in confident]},
            )
        face = confident[0] if confident else faces[0]
        self._check_quality(face)
        return face

    def _check_quality(self, face: DetectedFace) -> None:
        side = min(face.width, face.height)
        if side < self.policy.min_face_px:
            raise FaceQualityError(
                f"The face is {side:.0f} px across; enrolment needs at least {self.policy.min_face_px} px.",
                details={"rule": "min_face_px", "value": round(side, 1), "limit": self.policy.min_face_px},
            )
        if face.probability < self.policy.min_detection_probability:
            raise FaceQualityError(
                f"The detection probability is {face.probability:.3f}; enrolment needs at least "
                f"{self.policy.min_detection_probability}.",
                details={
                    "rule": "min_detection_probability",
                    "value": round(face.probability, 4),
                    "limit": self.policy.min_detection_probability,
                },
            )

    # --- use cases ---------------------------------------------------------------------------

    async def detect(self, data: bytes) -> tuple[int, int, list[DetectedFace]]:
        """Image width, height and every face in it; touches no database."""
        return await self._pool.run(self._detect_blocking, data)

    async def enroll(
        self,
        *,
        data: bytes,
        subject: str,
        collection: str,
        metadata: dict[str, Any] | None,
        on_multiple_faces: MultipleFacesPolicy,
        idempotency_key: str | None = None,
    ) -> EnrollResult:
        """Store one face under the subject in one transaction; a retried Idempotency-Key replays the answer."""
        data_sha256 = image_sha256(data)
        fingerprint = _fingerprint(data_sha256, subject, collection, metadata, on_multiple_faces)
        if idempotency_key is not None and (replay := await self._replay(idempotency_key, fingerprint)):
            return replay
        analysis = await self._analyse(data, max_faces=1, enrolment=on_multiple_faces)
        face = analysis.faces[0]
        try:
            async with self._database.transaction() as session:
                collection_id = await repository.ensure_collection(session, collection)
                subject_id, subject_created = await repository.ensure_subject(
                    session, collection_id=collection_id, name=subject, metadata=metadata
                )
                face_id, face_created = await repository.add_face(
                    session,
                    subject_id=subject_id,
                    collection_id=collection_id,
                    embedding=analysis.embeddings[0],
                    box=face.box,
                    landmarks=[coordinate for point in face.landmarks for coordinate in point],
                    detection_probability=face.probability,
                    model_id=self.model_id,
                    image_sha256=data_sha256,
                )
                result = EnrollResult(subject_id, subject, collection, face_id, face, subject_created, face_created)
                if idempotency_key is not None and not await repository.save_idempotent_response(
                    session,
                    key=idempotency_key,
                    request_sha256=fingerprint,
                    response=result.to_json(),
                    keep_for=IDEMPOTENCY_WINDOW,
                ):
                    raise _KeyTakenMeanwhile
        except _KeyTakenMeanwhile:
            # A concurrent request with the same key committed first; ours rolled back.
            replay = await self._replay(idempotency_key or "", fingerprint)
            assert replay is not None
            return replay
        return result

    async def _replay(self, key: str, fingerprint: str) -> EnrollResult | None:
        async with self._database.transaction() as session:
            stored = await repository.idempotent_response(session, key)
        if stored is None:
            return None
        stored_fingerprint, response = stored
        if stored_fingerprint != fingerprint:
            raise IdempotencyConflictError(
                "This Idempotency-Key was already used for a different request.", details={"idempotency_key": key}
            )
        return EnrollResult.from_json(response, replayed=True)

    async def identify(
        self, *, data: bytes, collection: str, top_k: int, threshold: float | None, max_faces: int
    ) -> IdentifyResult:
        threshold = self.policy.match_threshold if threshold is None else threshold
        analysis = await self._analyse(data, max_faces=max_faces, enrolment=None)
        async with self._database.driver_transaction() as connection:
            per_face = await nearest.nearest_subjects(
                connection,
                collection=collection,
                model_id=self.model_id,
                embeddings=list(analysis.embeddings),
                top_k=top_k,
                ef_search=self.policy.hnsw_ef_search,
            )
        if per_face is None:
            raise CollectionNotFoundError(f"No collection named {collection!r}.", details={"collection": collection})
        identified = [
            IdentifiedFace(
                face=face,
                candidates=candidates,
                match=candidates[0] if candidates and candidates[0].similarity >= threshold else None,
            )
            for face, candidates in zip(analysis.faces, per_face, strict=True)
        ]
        return IdentifyResult(collection, threshold, self.model_id, len(analysis.faces), identified)

    async def verify_pair(self, *, data: bytes, data_b: bytes, threshold: float | None) -> VerifyResult:
        threshold = self.policy.match_threshold if threshold is None else threshold
        first = await self._largest_face(data, which="image")
        second = await self._largest_face(data_b, which="image_b")
        similarity = float(np.dot(first.embeddings[0], second.embeddings[0]))
        return VerifyResult(similarity, threshold, similarity >= threshold, first.faces[0], second.faces[0], None)

    async def verify_subject(
        self, *, data: bytes, subject: str, collection: str, threshold: float | None
    ) -> VerifyResult:
        threshold = self.policy.match_threshold if threshold is None else threshold
        # The image is checked before the subject: a broken upload is the more basic error.
        probe = await self._largest_face(data, which="image")
        async with self._database.transaction() as session:
            collection_id = await self._collection_id(session, collection)
            subject_id = await repository.find_subject_id(session, collection_id=collection_id, name=subject)
            if subject_id is None:
                raise SubjectNotFoundError(f"No subject named {subject!r} in collection {collection!r}.")
            similarity = await repository.best_subject_similarity(
                session, subject_id=subject_id, model_id=self.model_id, embedding=probe.embeddings[0]
            )
        if similarity is None:
            raise SubjectNotFoundError(
                f"Subject {subject!r} has no faces enrolled with model {self.model_id}.",
                details={"subject_id": str(subject_id), "model_id": self.model_id},
            )
        return VerifyResult(similarity, threshold, similarity >= threshold, probe.faces[0], None, subject_id)

    async def _largest_face(self, data: bytes, *, which: str) -> Analysis:
        analysis = await self._analyse(data, max_faces=1, enrolment=None)
        if not analysis.faces:
            raise NoFaceDetectedError(f"No face was found in {which}.", details={"image": which})
        return analysis

    @staticmethod
    async def _collection_id(session: AsyncSession, name: str) -> int:
        collection_id = await repository.collection_id(session, name)
        if collection_id is None:
            raise CollectionNotFoundError(f"No collection named {name!r}.", details={"collection": name})
        return collection_id
