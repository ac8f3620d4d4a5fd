"""Large JPEGs are decoded only as finely as detection and the crops need (libjpeg's DCT scaling).

Stated tolerances, on the large photos of ../shared/faces, measured with pixels (the untrained
embeddings would all be alike):
- a crop cut from a reduced decode, where the face is at least 160 px wide, against the crop of
  the same box cut from the full decode: mean absolute difference at most 4 grey levels (of 255;
  measured at most 3.7), largest at most 80 (measured at most 70);
- faces found on the reduced decode against faces found on the full decode: every confident face
  is found, its box corners within 6% of its width (measured at most 5.0%).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.engine.decode import decode, decode_image
from app.engine.engine import FaceEngine
from tests.engine.conftest import ANY_SIZE

MAX_MEAN_GREY_DIFFERENCE = 4.0
MAX_GREY_DIFFERENCE = 80.0
MAX_CORNER_SHIFT = 0.06  # of the face's width
CONFIDENT = 0.9


def large_jpegs(faces_dir: Path, *, longest: int) -> list[str]:
    with (faces_dir / "manifest.csv").open(newline="") as stream:
        return [
            row["path"]
            for row in csv.DictReader(stream)
            if row["format"] == "JPEG" and max(int(row["width"]), int(row["height"])) >= longest
        ]


def test_crops_from_a_reduced_decode_match_the_full_decodes_within_the_stated_tolerance(
    engine: FaceEngine, faces_dir: Path
) -> None:
    compared = []
    for photo in large_jpegs(faces_dir, longest=800):
        data = (faces_dir / photo).read_bytes()
        full = decode_image(data, limits=ANY_SIZE)
        faces = [face for face in engine.detect(full) if face.probability >= CONFIDENT]
        for divisor in (2, 4, 8):
            reduced = decode(data, limits=ANY_SIZE, at_least=max(full.size) // divisor)
            usable = [face for face in faces if reduced.reduced and face.width * reduced.scale_x >= 160]
            if not usable:
                continue
            expected = engine.crops(full, faces=usable)
            actual = engine.crops(
                reduced.image, faces=[face.scaled(x=reduced.scale_x, y=reduced.scale_y) for face in usable]
            )
            grey_levels = np.abs(expected - actual) * 128.0
            compared += [(photo, divisor, float(grey.mean()), float(grey.max())) for grey in grey_levels]

    assert len(compared) >= 8
    assert max(mean for _, _, mean, _ in compared) <= MAX_MEAN_GREY_DIFFERENCE, compared
    assert max(largest for _, _, _, largest in compared) <= MAX_GREY_DIFFERENCE, compared


def test_faces_found_on_a_reduced_decode_are_those_of_the_full_decode(engine: FaceEngine, faces_dir: Path) -> None:
    photos = large_jpegs(faces_dir, longest=1600)
    shifts = []
    for photo in photos:
        data = (faces_dir / photo).read_bytes()
        found = engine.find_faces(data, limits=ANY_SIZE, consider=100)
        full = decode_image(data, limits=ANY_SIZE)
        for face in (face for face in engine.detect(full) if face.probability >= CONFIDENT):
            shift = min(max(abs(a - b) for a, b in zip(face.box, other.box, strict=True)) for other in found.faces)
            shifts.append(shift / face.width)
        assert (found.width, found.height) == full.size

    assert len(photos) >= 5
    assert len(shifts) >= 6
    assert max(shifts) <= MAX_CORNER_SHIFT


def exif_rotated_jpeg(*, width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height), (90, 120, 150))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown turned a quarter clockwise
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_a_reduced_decode_reports_the_full_size_as_displayed() -> None:
    decoded = decode(exif_rotated_jpeg(width=2400, height=1200), limits=ANY_SIZE, at_least=800)

    assert (decoded.width, decoded.height) == (1200, 2400)
    assert decoded.reduced
    assert decoded.image.size == (600, 1200)  # half: a quarter would be 600 px long, under 800
    assert (decoded.scale_x, decoded.scale_y) == (0.5, 0.5)


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_formats_without_dct_scaling_are_decoded_at_full_size(image_format: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 1000), (10, 20, 30)).save(buffer, format=image_format)

    decoded = decode(buffer.getvalue(), limits=ANY_SIZE, at_least=800)

    assert not decoded.reduced
    assert decoded.image.size == (2000, 1000)


def test_a_jpeg_no_longer_than_the_detection_side_is_decoded_at_full_size() -> None:
    decoded = decode(exif_rotated_jpeg(width=800, height=600), limits=ANY_SIZE, at_least=800)

    assert not decoded.reduced
    assert (decoded.width, decoded.height) == (600, 800)
