"""FACEREC_HNSW_M and FACEREC_HNSW_EF_CONSTRUCTION reach the index: at upgrade while the gallery is
empty, by `facerec db reindex` once it is not, and searches still find the same faces after it."""

from __future__ import annotations

import logging

import numpy as np
import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine

from app.cli import main
from app.config import Settings
from app.db import hnsw
from app.db import migrate as db
from app.db.hnsw import HnswOptions

WANTED = HnswOptions(m=24, ef_construction=100)


def plain(url: str) -> str:
    return url.replace("+psycopg", "")


def index_options(url: str) -> HnswOptions | None:
    engine = create_engine(db.normalise_url(url))
    try:
        with engine.connect() as connection:
            return hnsw.read_options(connection)
    finally:
        engine.dispose()


def add_faces(url: str, count: int) -> np.ndarray:
    vectors = np.random.default_rng(7).standard_normal((count, 512)).astype(np.float32)
    with psycopg.connect(plain(url)) as connection:
        subject = connection.execute(
            "INSERT INTO subjects (id, collection_id, name) VALUES (gen_random_uuid(), 1, 'someone') RETURNING id"
        ).fetchone()
        assert subject is not None
        for number, vector in enumerate(vectors):
            connection.execute(
                "INSERT INTO faces (id, subject_id, collection_id, embedding, box, landmarks,"
                " detection_probability, model_id, image_sha256)"
                " VALUES (gen_random_uuid(), %s, 1, %s::vector, '{0,0,1,1}', '{}', 1, 'm', %s)",
                (subject[0], "[" + ",".join(f"{v:.6f}" for v in vector) + "]", f"{number:064d}"),
            )
    return vectors


def nearest_hash(url: str, probe: np.ndarray) -> str:
    literal = "[" + ",".join(f"{v:.6f}" for v in probe) + "]"
    with psycopg.connect(plain(url)) as connection:
        connection.execute("SET enable_seqscan = off")  # answer from the index
        row = connection.execute(
            "SELECT image_sha256 FROM faces ORDER BY embedding <=> %s::vector LIMIT 1", (literal,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_fresh_upgrade_builds_the_index_with_pgvector_defaults(scratch_url: str) -> None:
    db.upgrade(scratch_url)

    assert index_options(scratch_url) == HnswOptions(m=16, ef_construction=64)


def test_upgrade_applies_configured_options_while_the_gallery_is_empty(scratch_url: str) -> None:
    db.upgrade(scratch_url, hnsw=WANTED)

    assert index_options(scratch_url) == WANTED


def test_upgrade_leaves_a_filled_index_alone_and_says_to_reindex(
    scratch_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db.upgrade(scratch_url)
    add_faces(scratch_url, 3)

    with caplog.at_level(logging.WARNING, logger="app.db.hnsw"):
        db.upgrade(scratch_url, hnsw=WANTED)

    assert index_options(scratch_url) == HnswOptions()
    assert "facerec db reindex" in caplog.text


def test_rebuild_applies_new_options_to_a_filled_index_and_search_finds_the_same_faces(scratch_url: str) -> None:
    db.upgrade(scratch_url)
    vectors = add_faces(scratch_url, 50)
    before = [nearest_hash(scratch_url, vector) for vector in vectors[:5]]

    previous, seconds = hnsw.rebuild(db.normalise_url(scratch_url), wanted=WANTED)

    assert previous == HnswOptions()
    assert seconds >= 0
    assert index_options(scratch_url) == WANTED
    assert [nearest_hash(scratch_url, vector) for vector in vectors[:5]] == before == [f"{n:064d}" for n in range(5)]


def test_rebuild_without_the_index_says_to_upgrade_first(scratch_url: str) -> None:
    with pytest.raises(LookupError, match="facerec db upgrade"):
        hnsw.rebuild(db.normalise_url(scratch_url), wanted=WANTED)


def test_db_reindex_command_rebuilds_with_the_settings(
    scratch_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db.upgrade(scratch_url)
    add_faces(scratch_url, 3)
    monkeypatch.setenv("FACEREC_DATABASE_URL", scratch_url)
    monkeypatch.setenv("FACEREC_HNSW_M", "8")
    monkeypatch.setenv("FACEREC_HNSW_EF_CONSTRUCTION", "40")

    assert main(["db", "reindex"]) == 0

    assert index_options(scratch_url) == HnswOptions(m=8, ef_construction=40)
    assert "rebuilt with m = 8, ef_construction = 40 (was m = 16, ef_construction = 64)" in capsys.readouterr().out


@pytest.mark.parametrize(("m", "ef_construction"), [(16, 31), (1, 64), (101, 1000)])
def test_settings_refuse_options_pgvector_would_refuse(m: int, ef_construction: int) -> None:
    with pytest.raises(ValidationError):
        Settings(hnsw_m=m, hnsw_ef_construction=ef_construction)
