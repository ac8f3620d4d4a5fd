"""The quality gate's defaults were chosen on ../shared/faces: every labelled single-face photo's main
face passes them (the README states the measured distributions)."""

from __future__ import annotations

import csv
from pathlib import Path

from app.composition import quality_limits
from app.config import Settings
from app.engine.engine import FaceEngine
from app.engine.quality import measure_all
from app.services.quality import AnalysedFace, quality_failures
from tests.engine.conftest import ANY_SIZE


def test_every_labelled_single_face_photo_passes_the_default_quality_gate(engine: FaceEngine, faces_dir: Path) -> None:
    limits = quality_limits(Settings(_env_file=None))
    with (faces_dir / "manifest.csv").open(newline="") as stream:
        photos = [row["path"] for row in csv.DictReader(stream) if row["faces_expected"] == "1" and row["identity"]]
    refused = []

    for photo in photos:
        found = engine.find_faces((faces_dir / photo).read_bytes(), limits=ANY_SIZE, consider=100)
        faces = [
            AnalysedFace(face, q)
            for face, q in zip(found.faces, measure_all(found.faces, crops=found.crops), strict=True)
        ]
        confident = [item for item in faces if item.face.probability >= limits.min_detection_probability]
        main = max(confident or faces, key=lambda item: item.face.width)
        if failures := quality_failures(main, limits=limits):
            refused.append(f"{photo}: {failures[0].message}")

    assert len(photos) >= 190
    assert refused == []
