"""The identify search, on the bare psycopg connection: one network round trip per request.

This is the hot path of /identify. Through the ORM it took four statements (collection lookup,
search settings, one search per face, commit) and ~3.5 ms of Python on the event loop; here
the settings and every face's search go out together in one pipeline, as prepared statements,
and cost ~1 ms. Everything else stays in app.db.repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg.vector import register_vector_info
from psycopg.types import TypeInfo

from app.db.records import SubjectMatch

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
SELECT s.id, s.name, best.distance
FROM collections AS c
LEFT JOIN (best JOIN subjects AS s ON s.id = best.subject_id) ON true
WHERE c.name = %(collection)s
ORDER BY best.distance, s.id
LIMIT %(top_k)s
"""


async def nearest_subjects(
    connection: psycopg.AsyncConnection[Any],
    *,
    collection: str,
    model_id: str,
    embeddings: Sequence[Vector],
    top_k: int,
    ef_search: int,
) -> list[list[SubjectMatch]] | None:
    """For each embedding, the top_k subjects by best cosine similarity; None if there is no such collection.

    Runs in the caller's transaction, which must not have been used for anything else.
    """
    if connection.adapters.types.get("vector") is None:
        # Once per connection: numpy arrays then go out as binary vectors, with no text formatting.
        register_vector_info(connection, await TypeInfo.fetch(connection, "vector"))
    if not embeddings:
        found = await connection.execute("SELECT 1 FROM collections WHERE name = %s", (collection,))
        return [] if await found.fetchone() else None
    candidates = face_candidates(top_k)
    cursors = [connection.cursor() for _ in embeddings]
    async with connection.pipeline():
        await connection.execute(_SEARCH_SETTINGS, {"ef_search": str(max(ef_search, candidates))})
        for cursor, embedding in zip(cursors, embeddings, strict=True):
            await cursor.execute(
                NEAREST_SUBJECTS,
                {
                    "embedding": embedding,
                    "collection": collection,
                    "model_id": model_id,
                    "face_candidates": candidates,
                    "top_k": top_k,
                },
                prepare=True,
            )
    results: list[list[SubjectMatch]] = []
    for cursor in cursors:
        rows = await cursor.fetchall()
        if not rows:
            return None
        results.append(
            [
                SubjectMatch(subject_id=subject_id, name=name, similarity=1.0 - float(distance))
                for subject_id, name, distance in rows
                if subject_id is not None
            ]
        )
    return results
