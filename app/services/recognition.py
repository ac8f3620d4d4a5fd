"""Detect, identify and verify: the read-only use cases. identify and verify change nothing, so their
audit entry is written (and must be) before the answer is sent."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

import numpy as np

from app.db.records import CollectionSettings, SubjectMatch
from app.db.repository import Repository
from app.db.session import Database
from app.engine.faces import DetectedFace
from app.errors import CollectionNotFoundError, NoFaceDetectedError, SubjectNotFoundError
from app.services.access import Principal
from app.services.analysis import Analysis, Chosen, Detection, FaceAnalyser
from app.services.audit import AuditTrail
from app.services.policy import RecognitionPolicy, Threshold


@dataclass(frozen=True)
class IdentifiedFace:
    face: DetectedFace
    candidates: list[SubjectMatch]
    match: SubjectMatch | None


@dataclass(frozen=True)
class IdentifyRequest:
    data: bytes
    collection: str
    top_k: int
    max_faces: int
    threshold: float | None = None


@dataclass(frozen=True)
class IdentifyResult:
    collection: str
    threshold: Threshold
    model_id: str
    faces_detected: int
    faces: list[IdentifiedFace]


@dataclass(frozen=True)
class VerifyRequest:
    """One photo against a second photo (data_b) or an enrolled subject of the collection."""

    data: bytes
    collection: str
    data_b: bytes | None = None
    subject: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class VerifyResult:
    similarity: float
    threshold: Threshold
    same_person: bool
    face: DetectedFace
    face_b: DetectedFace | None
    subject_id: uuid.UUID | None


class RecognitionService:
    def __init__(
        self, *, analyser: FaceAnalyser, database: Database, policy: RecognitionPolicy, audit: AuditTrail
    ) -> None:
        self._analyser = analyser
        self._database = database
        self.policy = policy
        self._audit = audit

    @property
    def model_id(self) -> str:
        return self._analyser.model_id

    async def detect(self, data: bytes) -> Detection:
        """Image width, height and every face in it; touches no database."""
        return await self._analyser.detect(data)

    async def identify(self, request: IdentifyRequest, *, principal: Principal) -> IdentifyResult:
        principal.require_collection(request.collection)
        entry = principal.audit("identify", collection=request.collection)
        async with self._audit.recording_failures(entry):
            analysis = await self._analyser.analyse(
                request.data, choose=lambda faces: Chosen(faces=faces), consider=request.max_faces
            )
            async with self._database.transaction() as repository:
                nearest = await repository.nearest_subjects(
                    collection=request.collection,
                    model_id=self.model_id,
                    embeddings=list(analysis.embeddings),
                    top_k=request.top_k,
                    ef_search=self.policy.hnsw_ef_search,
                )
                if nearest is None:
                    raise CollectionNotFoundError(
                        f"No collection named {request.collection!r}.", details={"collection": request.collection}
                    )
                threshold = self.policy.threshold(requested=request.threshold, collection=nearest.match_threshold)
                faces = [
                    IdentifiedFace(
                        face=item.face,
                        candidates=candidates,
                        match=candidates[0] if candidates and candidates[0].similarity >= threshold.value else None,
                    )
                    for item, candidates in zip(analysis.faces, nearest.per_face, strict=True)
                ]
                matched = [item.match.subject_id for item in faces if item.match is not None]
                details = {"faces": len(faces), "matched": len(matched)}
                await repository.append_audit(dataclasses.replace(entry, subject_ids=tuple(matched), details=details))
        return IdentifyResult(
            collection=request.collection,
            threshold=threshold,
            model_id=self.model_id,
            faces_detected=analysis.faces_detected,
            faces=faces,
        )

    async def verify(self, request: VerifyRequest, *, principal: Principal) -> VerifyResult:
        if request.subject is not None:
            principal.require_collection(request.collection)
        entry = principal.audit("verify", collection=request.collection if request.subject is not None else None)
        async with self._audit.recording_failures(entry):
            # The image is checked before the subject: a broken upload is the more basic error.
            probe = await self._largest_face(request.data, which="image")
            second = None if request.data_b is None else await self._largest_face(request.data_b, which="image_b")
            async with self._database.transaction() as repository:
                settings = await repository.collection_settings(request.collection)
                threshold = self.policy.threshold(
                    requested=request.threshold, collection=None if settings is None else settings.match_threshold
                )
                subject_id = None
                if second is not None:
                    similarity = float(np.dot(probe.embeddings[0], second.embeddings[0]))
                else:
                    subject_id, similarity = await self._subject_similarity(
                        repository, request=request, probe=probe, collection=settings
                    )
                same_person = similarity >= threshold.value
                subjects = () if subject_id is None else (subject_id,)
                details = {"same_person": same_person}
                await repository.append_audit(dataclasses.replace(entry, subject_ids=subjects, details=details))
        return VerifyResult(
            similarity=similarity,
            threshold=threshold,
            same_person=same_person,
            face=probe.faces[0].face,
            face_b=None if second is None else second.faces[0].face,
            subject_id=subject_id,
        )

    async def _subject_similarity(
        self,
        repository: Repository,
        *,
        request: VerifyRequest,
        probe: Analysis,
        collection: CollectionSettings | None,
    ) -> tuple[uuid.UUID, float]:
        if collection is None:
            raise CollectionNotFoundError(
                f"No collection named {request.collection!r}.", details={"collection": request.collection}
            )
        subject_id = await repository.find_subject_id(collection_id=collection.id, name=request.subject or "")
        if subject_id is None:
            raise SubjectNotFoundError(f"No subject named {request.subject!r} in collection {request.collection!r}.")
        similarity = await repository.best_subject_similarity(
            subject_id, model_id=self.model_id, embedding=probe.embeddings[0]
        )
        if similarity is None:
            raise SubjectNotFoundError(
                f"Subject {request.subject!r} has no faces enrolled with model {self.model_id}.",
                details={"subject_id": str(subject_id), "model_id": self.model_id},
            )
        return subject_id, similarity

    async def _largest_face(self, data: bytes, *, which: str) -> Analysis:
        analysis = await self._analyser.analyse(data, choose=lambda faces: Chosen(faces=faces[:1]), consider=1)
        if not analysis.faces:
            raise NoFaceDetectedError(f"No face was found in {which}.", details={"image": which})
        return analysis
