"""Enrolment: one face stored under a subject, in one transaction with its guards and its audit entry.

The guards keep a gallery from going bad: the quality gate and the bystander rule choose the face
(app.services.quality); then, under a per-collection lock, the face must not match another
subject at or above the threshold (a second name for one person), and a face unlike the
subject's other faces is flagged (a mislabelled photo).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from app.db.records import AuditEntry, NewFace
from app.db.repository import Repository
from app.db.session import Database
from app.errors import FaceMatchesOtherSubjectError, IdempotencyConflictError, LowSimilarityToSubjectError
from app.services.access import Principal
from app.services.analysis import Analysis, Chosen, FaceAnalyser, FaceChoice
from app.services.audit import AuditTrail
from app.services.enrollment_records import EnrollRequest, EnrollResult, EnrollWarning
from app.services.policy import ConflictPolicy, LowSimilarityPolicy, RecognitionPolicy, Threshold
from app.services.quality import AnalysedFace, MultipleFacesPolicy, choose_enrolment_face

logger = logging.getLogger(__name__)

__all__ = ["EnrollRequest", "EnrollResult", "EnrollmentService"]

IDEMPOTENCY_WINDOW = timedelta(hours=24)


def enrolment_face_choice(policy: RecognitionPolicy, *, on_multiple_faces: MultipleFacesPolicy) -> FaceChoice:
    """The face an enrolment stores, chosen as app.services.quality says (for `facerec eval` too)."""

    def choose(faces: list[AnalysedFace]) -> Chosen:
        choice = choose_enrolment_face(
            faces,
            limits=policy.quality,
            bystander_ratio=policy.bystander_max_width_ratio,
            on_multiple_faces=on_multiple_faces,
        )
        return Chosen(faces=[choice.face], ignored=choice.ignored)

    return choose


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
            choose = enrolment_face_choice(self.policy, on_multiple_faces=request.on_multiple_faces)
            analysis = await self._analyser.analyse(request.data, choose=choose)
            try:
                return await self._store(request, analysis=analysis, entry=entry)
            except _KeyTakenMeanwhile:
                # A concurrent request with the same key committed first; ours rolled back.
                replay = await self._replay(request, entry=entry)
                assert replay is not None
                return replay

    async def _store(self, request: EnrollRequest, *, analysis: Analysis, entry: AuditEntry) -> EnrollResult:
        face = analysis.faces[0]
        async with self._database.transaction() as repository:
            collection_id = await repository.ensure_collection(request.collection)
            await repository.lock_collection_for_enrolment(collection_id)
            settings = await repository.collection_settings(request.collection)
            threshold = self.policy.threshold(
                requested=request.threshold, collection=None if settings is None else settings.match_threshold
            )
            subject_id, subject_created = await repository.ensure_subject(
                collection_id=collection_id, name=request.subject, metadata=request.metadata
            )
            await self._refuse_a_second_name(
                repository, request=request, analysis=analysis, threshold=threshold, subject_id=subject_id
            )
            warnings = (
                []
                if subject_created
                else await self._consistency(
                    repository, request=request, analysis=analysis, threshold=threshold, subject_id=subject_id
                )
            )
            face_id, face_created = await repository.add_face(
                NewFace(
                    subject_id=subject_id,
                    collection_id=collection_id,
                    embedding=analysis.embeddings[0],
                    box=face.face.box,
                    landmarks=tuple(coordinate for point in face.face.landmarks for coordinate in point),
                    detection_probability=face.face.probability,
                    model_id=self._analyser.model_id,
                    image_sha256=request.image_sha256,
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
                threshold=threshold,
                ignored_faces=analysis.chosen.ignored,
                warnings=warnings,
            )
            if request.idempotency_key is not None and not await repository.save_idempotent_response(
                key=request.idempotency_key,
                request_sha256=request.fingerprint,
                response=result.to_json(),
                keep_for=IDEMPOTENCY_WINDOW,
            ):
                raise _KeyTakenMeanwhile
            await repository.append_audit(result.audited(entry))
        return result

    async def _refuse_a_second_name(
        self,
        repository: Repository,
        *,
        request: EnrollRequest,
        analysis: Analysis,
        threshold: Threshold,
        subject_id: uuid.UUID,
    ) -> None:
        """409 when the face's best match in the collection is another subject at or above the threshold."""
        if not self.policy.enroll_conflict_check or request.on_conflict is ConflictPolicy.ALLOW:
            return
        nearest = await repository.nearest_subjects(
            collection=request.collection,
            model_id=self._analyser.model_id,
            embeddings=[analysis.embeddings[0]],
            top_k=1,
            ef_search=self.policy.hnsw_ef_search,
        )
        best = nearest.per_face[0][0] if nearest is not None and nearest.per_face[0] else None
        if best is not None and best.subject_id != subject_id and best.similarity >= threshold.value:
            raise FaceMatchesOtherSubjectError(
                f"This face matches {best.name!r} in collection {request.collection!r} (similarity "
                f"{best.similarity:.3f}, threshold {threshold.value:g}): it may be the same person under a second "
                "name. Enrol it under that subject, or send on_conflict=allow if they are two people.",
                details={
                    "subject_id": str(best.subject_id),
                    "subject": best.name,
                    "similarity": round(best.similarity, 6),
                    "threshold": threshold.value,
                    "threshold_source": threshold.source.value,
                },
            )

    async def _consistency(
        self,
        repository: Repository,
        *,
        request: EnrollRequest,
        analysis: Analysis,
        threshold: Threshold,
        subject_id: uuid.UUID,
    ) -> list[EnrollWarning]:
        """A warning (or 409 with on_low_similarity=reject) when the face is unlike the subject's other faces."""
        best = await repository.best_subject_similarity(
            subject_id, model_id=self._analyser.model_id, embedding=analysis.embeddings[0]
        )
        if best is None or best >= threshold.value:
            return []
        message = (
            f"This face's best similarity to {request.subject!r}'s other faces is {best:.3f}, under the threshold "
            f"{threshold.value:g}: check that the photo shows this person."
        )
        details = {
            "similarity": round(best, 6),
            "threshold": threshold.value,
            "threshold_source": threshold.source.value,
        }
        if request.on_low_similarity is LowSimilarityPolicy.REJECT:
            raise LowSimilarityToSubjectError(message, details=details)
        return [EnrollWarning(code=LowSimilarityToSubjectError.code, message=message, details=details)]

    async def _replay(self, request: EnrollRequest, *, entry: AuditEntry) -> EnrollResult | None:
        """The stored answer to this Idempotency-Key, audited as a replay; None when the key is new."""
        key = request.idempotency_key or ""
        async with self._database.transaction() as repository:
            stored = await repository.idempotent_response(key)
            if stored is None:
                return None
            fingerprint, response = stored
            if fingerprint != request.fingerprint:
                raise IdempotencyConflictError(
                    "This Idempotency-Key was already used for a different request.", details={"idempotency_key": key}
                )
            try:
                result = EnrollResult.from_json(response)
            except (KeyError, TypeError, ValueError):
                raise IdempotencyConflictError(
                    "This Idempotency-Key's answer was stored by an older facerec version; use a new key.",
                    details={"idempotency_key": key},
                ) from None
            await repository.append_audit(result.audited(entry))
        return result


class _KeyTakenMeanwhile(Exception):  # noqa: N818 - control flow inside enroll(), never escapes
    pass
