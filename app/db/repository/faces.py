"""Faces: storing them, listing and deleting them, and finding the nearest subjects.

The 1:N search is the hot path of /identify: the search settings and every face's search go out
together in one pipeline, as prepared statements with binary vectors (~1 ms of Python a
request, against ~3.5 ms through an ORM).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from app.db.records import ExpiredFace, FaceRecord, Nearest, NewFace, SubjectMatch
from app.db.repository.base import Statements

Vector = npt.NDArray[np.float32]

# Face candidates fetched per probe before grouping by subject: enough that top_k distinct
# subjects survive when subjects have many faces each.
MAX_FACE_CANDIDATES = 1000


def face_candidates(top_k: int) -> int:
    return min(MAX_FACE_CANDIDATES, max(64, top_k * 16))


# set_config(..., true) is SET LOCAL: it lasts for this transaction only. Iterative scans
# (pgvector 0.8) keep walking the graph when the collection/model filter discards candidates,
# instead of returning too few.
_SEARCH_SETTINGS = (
    "SELECT set_config('hnsw.ef_search', %(ef_search)s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)"
)

# The collection is looked up inside the statement (an InitPlan, so the HNSW scan keeps its
# plain filter). No row at all means there is no such collection; one row with a NULL subject
# means the collection has no faces of this model yet.
NEAREST_SUBJECTS = """
WITH nearest AS (
    SELECT subject_id, embedding <=> %(embedding)s AS distance
    FROM faces
    WHERE collection_id = (SELECT id FROM collections WHERE name = %(collection)s)
      AND model_id = %(model_id)s
    ORDER BY embedding <=> %(embedding)s
    LIMIT %(face_candidates)s
), best AS (
    SELECT subject_id, min(distance) AS distance FROM nearest GROUP BY subject_id
)
SELECT s.id, s.name, best.distance, c.match_threshold
FROM collections AS c
LEFT JOIN (best JOIN subjects AS s ON s.id = best.subject_id) ON true
WHERE c.name = %(collection)s
ORDER BY best.distance, s.id
LIMIT %(top_k)s
"""

_FACE_COLUMNS = "id, subject_id, box, landmarks, detection_probability, model_id, image_sha256, created_at"


class FaceStatements(Statements):
    async def add_face(self, face: NewFace) -> tuple[uuid.UUID, bool]:
        """The face's id and whether it is new: the same image for the same subject is stored once."""
        created = await self._row(
            "INSERT INTO faces (id, subject_id, collection_id, embedding, box, landmarks, detection_probability,"
            " model_id, image_sha256) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT ON CONSTRAINT uq_faces_subject_model_image DO NOTHING RETURNING id",
            params=(
                uuid.uuid4(),
                face.subject_id,
                face.collection_id,
                np.asarray(face.embedding, dtype=np.float32),
                list(face.box),
                list(face.landmarks),
                face.detection_probability,
                face.model_id,
                face.image_sha256,
            ),
            prepare=True,
        )
        if created is not None:
            await self._count("UPDATE subjects SET updated_at = now() WHERE id = %s", params=(face.subject_id,))
            return created[0], True
        existing = await self._row(
            "SELECT id FROM faces WHERE subject_id = %s AND model_id = %s AND image_sha256 = %s",
            params=(face.subject_id, face.model_id, face.image_sha256),
        )
        assert existing is not None  # the conflicting row is visible: it blocked our insert
        return existing[0], False

    async def list_faces(self, subject_id: uuid.UUID) -> list[FaceRecord]:
        rows = await self._rows(
            f"SELECT {_FACE_COLUMNS} FROM faces WHERE subject_id = %s ORDER BY created_at, id", params=(subject_id,)
        )
        return [
            FaceRecord(
                id=face_id,
                subject_id=owner,
                box=tuple(box),
                landmarks=tuple(landmarks),
                detection_probability=probability,
                model_id=model_id,
                image_sha256=image_sha256,
                created_at=created_at,
            )
            for face_id, owner, box, landmarks, probability, model_id, image_sha256, created_at in rows
        ]

    async def face_owner(self, face_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        """The subject id and collection name of a face."""
        row = await self._row(
            "SELECT f.subject_id, c.name FROM faces AS f JOIN collections AS c ON c.id = f.collection_id"
            " WHERE f.id = %s",
            params=(face_id,),
        )
        return None if row is None else (row[0], row[1])

    async def delete_face(self, face_id: uuid.UUID) -> bool:
        return await self._count("DELETE FROM faces WHERE id = %s", params=(face_id,)) > 0

    async def delete_expired_faces(self) -> list[ExpiredFace]:
        """Delete faces older than their collection's retention period."""
        rows = await self._rows(
            "DELETE FROM faces AS f USING collections AS c"
            " WHERE c.id = f.collection_id AND c.retention_days IS NOT NULL"
            " AND f.created_at < now() - make_interval(days => c.retention_days)"
            " RETURNING c.name, f.subject_id, f.id"
        )
        return [
            ExpiredFace(collection=name, subject_id=subject_id, face_id=face_id) for name, subject_id, face_id in rows
        ]

    async def best_subject_similarity(self, subject_id: uuid.UUID, *, model_id: str, embedding: Vector) -> float | None:
        """The highest cosine similarity between the embedding and the subject's faces of this model."""
        row = await self._row(
            "SELECT min(embedding <=> %s) FROM faces WHERE subject_id = %s AND model_id = %s",
            params=(np.asarray(embedding, dtype=np.float32), subject_id, model_id),
            prepare=True,
        )
        return None if row is None or row[0] is None else 1.0 - float(row[0])

    async def nearest_subjects(
        self, *, collection: str, model_id: str, embeddings: Sequence[Vector], top_k: int, ef_search: int
    ) -> Nearest | None:
        """For each embedding, the top_k subjects by best cosine similarity; None if there is no such collection.

        Its search settings last for the rest of the transaction.
        """
        if not embeddings:
            found = await self._row("SELECT match_threshold FROM collections WHERE name = %s", params=(collection,))
            return None if found is None else Nearest(per_face=[], match_threshold=found[0])
        candidates = face_candidates(top_k)
        cursors = [self._connection.cursor() for _ in embeddings]
        async with self._connection.pipeline():
            await self._connection.execute(_SEARCH_SETTINGS, {"ef_search": str(ef_search)})
            for cursor, embedding in zip(cursors, embeddings, strict=True):
                params: dict[str, Any] = {
                    "embedding": embedding,
                    "collection": collection,
                    "model_id": model_id,
                    "face_candidates": candidates,
                    "top_k": top_k,
                }
                await cursor.execute(NEAREST_SUBJECTS, params, prepare=True)
        results: list[list[SubjectMatch]] = []
        threshold: float | None = None
        for cursor in cursors:
            rows = await cursor.fetchall()
            if not rows:
                return None
            threshold = rows[0][3]
            results.append(
                [
                    SubjectMatch(subject_id=subject_id, name=name, similarity=1.0 - float(distance))
                    for subject_id, name, distance, _ in rows
                    if subject_id is not None
                ]
            )
        return Nearest(per_face=results, match_threshold=threshold)
