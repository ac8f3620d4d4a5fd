"""The identify search in a unit of work: ranking, filters, the collection check, the
transaction-scoped HNSW settings, a plan that can use the HNSW index, and rollback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np
import psycopg
import pytest

from app.db import migrate
from app.db.records import SubjectMatch
from app.db.repository import Repository
from app.db.repository.faces import NEAREST_SUBJECTS, face_candidates
from app.db.session import Database, make_engine
from app.errors import DatabaseUnavailableError

T = TypeVar("T")
DIM = 512


def plain(url: str) -> str:
    return url.replace("+psycopg", "")


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def blend(a: np.ndarray, b: np.ndarray, *, weight: float) -> np.ndarray:
    mixed = (1 - weight) * a + weight * b
    return (mixed / np.linalg.norm(mixed)).astype(np.float32)


def add_subject(url: str, name: str, faces: list[np.ndarray], *, collection: str = "default", model: str = "m") -> str:
    with psycopg.connect(plain(url)) as connection:
        collection_id = connection.execute(
            "INSERT INTO collections (name) VALUES (%s) ON CONFLICT (name) DO UPDATE SET name = excluded.name"
            " RETURNING id",
            (collection,),
        ).fetchone()
        assert collection_id is not None
        subject = connection.execute(
            "INSERT INTO subjects (id, collection_id, name) VALUES (gen_random_uuid(), %s, %s) RETURNING id",
            (collection_id[0], name),
        ).fetchone()
        assert subject is not None
        for number, vector in enumerate(faces):
            connection.execute(
                "INSERT INTO faces (id, subject_id, collection_id, embedding, box, landmarks,"
                " detection_probability, model_id, image_sha256)"
                " VALUES (gen_random_uuid(), %s, %s, %s::vector, '{0,0,1,1}', '{}', 1, %s, %s)",
                (
                    subject[0],
                    collection_id[0],
                    "[" + ",".join(f"{v:.7f}" for v in vector) + "]",
                    model,
                    f"{name}{number}".ljust(64, "0"),
                ),
            )
    return str(subject[0])


def database(url: str, *, pool_size: int = 2) -> Database:
    engine = make_engine(url, pool_size=pool_size, max_overflow=0, connect_timeout_s=5, statement_timeout_s=10)
    return Database(engine, url=url)


def in_transaction(url: str, *, work: Callable[[Repository], Coroutine[Any, Any, T]]) -> T:
    async def run() -> T:
        ready = database(url)
        await ready.prepare(migrate=False)
        try:
            async with ready.transaction() as repository:
                return await work(repository)
        finally:
            await ready.engine.dispose()

    return asyncio.run(run())


def search(
    url: str,
    *,
    embeddings: list[np.ndarray],
    collection: str = "default",
    model: str = "m",
    top_k: int = 3,
    ef_search: int = 40,
) -> list[list[SubjectMatch]] | None:
    async def work(repository: Repository) -> list[list[SubjectMatch]] | None:
        nearest = await repository.nearest_subjects(
            collection=collection, model_id=model, embeddings=embeddings, top_k=top_k, ef_search=ef_search
        )
        return None if nearest is None else nearest.per_face

    return in_transaction(url, work=work)


@pytest.fixture
def gallery(scratch_url: str) -> str:
    migrate.upgrade(scratch_url)
    return scratch_url


def test_subjects_are_ranked_by_their_best_face_and_each_appears_once(gallery: str) -> None:
    anna, ben = unit(1), unit(2)
    add_subject(gallery, "anna", [anna, blend(anna, unit(9), weight=0.5), blend(anna, unit(10), weight=0.6)])
    add_subject(gallery, "ben", [ben])
    add_subject(gallery, "cleo", [unit(3)])

    [matches] = search(gallery, embeddings=[blend(anna, ben, weight=0.3)]) or [[]]

    assert [match.name for match in matches] == ["anna", "ben", "cleo"]
    assert matches[0].similarity == pytest.approx(float(np.dot(anna, blend(anna, ben, weight=0.3))), abs=1e-5)
    assert matches[0].similarity > matches[1].similarity > matches[2].similarity


def test_each_embedding_gets_its_own_candidates_in_order(gallery: str) -> None:
    faces = {name: unit(seed) for seed, name in enumerate(["anna", "ben", "cleo"], start=20)}
    for name, face in faces.items():
        add_subject(gallery, name, [face])

    results = search(gallery, embeddings=[faces["cleo"], faces["anna"], faces["ben"]], top_k=1)

    assert results is not None
    assert [[match.name for match in matches] for matches in results] == [["cleo"], ["anna"], ["ben"]]
    assert all(matches[0].similarity == pytest.approx(1.0, abs=1e-5) for matches in results)


def test_top_k_limits_the_subjects_returned(gallery: str) -> None:
    for seed in range(5):
        add_subject(gallery, f"person{seed}", [unit(seed)])

    [matches] = search(gallery, embeddings=[unit(0)], top_k=2) or [[]]

    assert len(matches) == 2


def test_faces_of_other_collections_and_models_are_not_candidates(gallery: str) -> None:
    probe = unit(30)
    add_subject(gallery, "elsewhere", [probe], collection="other")
    add_subject(gallery, "older-model", [probe], model="old")
    add_subject(gallery, "here", [unit(31)])

    [matches] = search(gallery, embeddings=[probe]) or [[]]

    assert [match.name for match in matches] == ["here"]


def test_an_empty_collection_gives_no_candidates_for_each_face(gallery: str) -> None:
    assert search(gallery, embeddings=[unit(1), unit(2)]) == [[], []]


def test_an_unknown_collection_gives_none_with_or_without_faces(gallery: str) -> None:
    add_subject(gallery, "anna", [unit(1)])

    assert search(gallery, embeddings=[unit(1)], collection="nope") is None
    assert search(gallery, embeddings=[], collection="nope") is None
    assert search(gallery, embeddings=[]) == []


def test_search_settings_last_for_its_transaction_only(gallery: str) -> None:
    face = unit(40)
    add_subject(gallery, "anna", [face])

    async def work(repository: Repository) -> tuple[list[str], list[str], float]:
        results = await repository.nearest_subjects(
            collection="default", model_id="m", embeddings=[face], top_k=1, ef_search=123
        )
        assert results is not None
        connection = repository._connection
        inside = [await show(connection, name=name) for name in ("ef_search", "iterative_scan")]
        await connection.commit()
        after = [await show(connection, name=name) for name in ("ef_search", "iterative_scan")]
        return inside, after, results.per_face[0][0].similarity

    inside, after, similarity = in_transaction(gallery, work=work)

    assert inside == ["123", "relaxed_order"]
    assert after == ["40", "off"]  # pgvector's defaults again
    assert similarity == pytest.approx(1.0, abs=1e-5)


def test_ef_search_means_what_it_says_and_iterative_scans_still_fill_top_k(gallery: str) -> None:
    for seed in range(30):
        add_subject(gallery, f"person{seed}", [unit(100 + seed)])

    async def work(repository: Repository) -> tuple[str, int]:
        results = await repository.nearest_subjects(
            collection="default", model_id="m", embeddings=[unit(100)], top_k=25, ef_search=10
        )
        assert results is not None
        return await show(repository._connection, name="ef_search"), len(results.per_face[0])

    setting, returned = in_transaction(gallery, work=work)

    assert setting == "10"
    assert returned == 25
    assert face_candidates(100) == 1000


def fill_gallery(url: str, faces: int) -> None:
    """`faces` random faces of faces/2 subjects in the default collection, by COPY, then ANALYZE."""
    vectors = np.random.default_rng(5).standard_normal((faces, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with psycopg.connect(plain(url)) as connection:
        subjects = [
            row[0]
            for row in connection.execute(
                "INSERT INTO subjects (id, collection_id, name)"
                " SELECT gen_random_uuid(), 1, 'person' || n FROM generate_series(1, %s) AS n RETURNING id",
                (faces // 2,),
            ).fetchall()
        ]
        with connection.cursor().copy(
            "COPY faces (id, subject_id, collection_id, embedding, box, landmarks, detection_probability,"
            " model_id, image_sha256) FROM STDIN"
        ) as copy:
            for number, vector in enumerate(vectors):
                copy.write_row(
                    [
                        str(uuid.uuid4()),
                        subjects[number % len(subjects)],
                        1,
                        "[" + ",".join(f"{v:.5f}" for v in vector) + "]",
                        "{0,0,1,1}",
                        "{}",
                        1.0,
                        "m",
                        f"{number:064d}",
                    ]
                )
        connection.execute("ANALYZE")


@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
def test_a_gallery_of_5000_faces_is_searched_through_the_hnsw_index(gallery: str, plan_cache_mode: str) -> None:
    # The statement is prepared: after five runs Postgres may switch to a generic plan, in which
    # the collection and the limits are unknown parameters. Both plans must walk the graph.
    fill_gallery(gallery, 5000)

    async def work(repository: Repository) -> str:
        connection = repository._connection
        await connection.execute(f"SET LOCAL plan_cache_mode = {plan_cache_mode}")
        await repository.nearest_subjects(
            collection="default", model_id="m", embeddings=[unit(0)], top_k=3, ef_search=40
        )
        cursor = await connection.execute(
            "EXPLAIN " + NEAREST_SUBJECTS,
            {"embedding": unit(0), "collection": "default", "model_id": "m", "face_candidates": 64, "top_k": 3},
            prepare=True,
        )
        return "\n".join(str(row[0]) for row in await cursor.fetchall())

    plan = in_transaction(gallery, work=work)

    assert "Index Scan using ix_faces_embedding_hnsw on faces" in plan, plan


def test_a_failed_statement_rolls_back_and_the_connection_is_reused_cleanly(gallery: str) -> None:
    async def run() -> tuple[str, list[list[SubjectMatch]] | None]:
        ready = database(gallery, pool_size=1)
        await ready.prepare(migrate=False)
        try:
            with pytest.raises(psycopg.errors.UndefinedTable):
                async with ready.transaction() as repository:
                    await repository._connection.execute("SELECT * FROM no_such_table")
            async with ready.transaction() as repository:
                status = repository._connection.info.transaction_status.name
                results = await repository.nearest_subjects(
                    collection="default", model_id="m", embeddings=[unit(1)], top_k=1, ef_search=40
                )
            return status, None if results is None else results.per_face
        finally:
            await ready.engine.dispose()

    status, results = asyncio.run(run())

    assert status == "IDLE"
    assert results == [[]]


def test_a_database_that_is_not_ready_is_reported_as_unavailable(gallery: str) -> None:
    async def run() -> None:
        unprepared = database(gallery, pool_size=1)
        try:
            async with unprepared.transaction():
                pass
        finally:
            await unprepared.engine.dispose()

    with pytest.raises(DatabaseUnavailableError, match="not ready"):
        asyncio.run(run())


async def show(connection: psycopg.AsyncConnection[Any], *, name: str) -> str:
    cursor = await connection.execute(f"SHOW hnsw.{name}")
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0])
