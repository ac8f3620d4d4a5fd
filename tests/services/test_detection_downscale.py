"""Detecting on a downscaled copy (FACEREC_DETECT_MAX_SIDE, for speed) finds the same faces as
detecting at full resolution, on the labelled photos, within a stated tolerance.

The minimum face size is in pixels of the detection image, so on a photo of long side L the
default looks for faces down to min_face x L / max_side original pixels. The reference detects
at full resolution with that same relative minimum; then:

- every face with probability >= 0.9 whose side is at least 1.25 x that minimum, found either
  way, was also found (with any probability and size) the other way, its box overlapping with
  IoU >= 0.8 (half-visible faces at the image edge move the most: barack_obama/6 measures 0.83).
  Faces right at the minimum come and go with any resampling, hence the margin.
Only photos larger than the detection side are compared: smaller ones are not resized at all.
Whether the minimum itself is right is tested against the labelled face counts in
test_face_engine.py.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from app.services.face_engine import DetectedFace, EngineConfig, FaceEngine
from app.services.images import ImageLimits, decode_image

MIN_PROBABILITY = 0.9
MIN_IOU = 0.8
MIN_SIZE_MARGIN = 1.25


def _engine(weights_file: tuple[Path, str], max_side: int) -> FaceEngine:
    config = EngineConfig(
        weights_path=weights_file[0], model_id="t", device="cpu", detect_max_side=max_side, embedding_backend="torch"
    )
    return FaceEngine(config)


def _confident(faces: list[DetectedFace], min_side: float) -> list[DetectedFace]:
    return [f for f in faces if f.probability >= MIN_PROBABILITY and min(f.width, f.height) >= min_side]


def _full_resolution(weights_file: tuple[Path, str], min_face_px: int) -> FaceEngine:
    config = EngineConfig(
        weights_path=weights_file[0],
        model_id="t",
        device="cpu",
        detect_max_side=100_000,
        detector_min_face_px=min_face_px,
        embedding_backend="torch",
    )
    return FaceEngine(config)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _large_photos(faces_dir: Path, max_side: int) -> list[str]:
    with (faces_dir / "manifest.csv").open() as manifest:
        rows = list(csv.DictReader(manifest))
    return [
        row["path"]
        for row in rows
        if not row["path"].startswith("_noface") and max(int(row["width"]), int(row["height"])) > max_side
    ]


def test_default_downscaled_detection_matches_full_resolution_on_labelled_photos(
    weights_file: tuple[Path, str], faces_dir: Path
) -> None:
    defaults = EngineConfig(weights_path=weights_file[0], model_id="t")
    fast = _engine(weights_file, defaults.detect_max_side)
    photos = _large_photos(faces_dir, defaults.detect_max_side)
    limits = ImageLimits(max_bytes=50_000_000, max_pixels=50_000_000, min_side=1)
    disagreements: list[str] = []

    for photo in photos:
        image: Image.Image = decode_image((faces_dir / photo).read_bytes(), limits=limits)
        relative_min = defaults.detector_min_face_px * max(image.size) / defaults.detect_max_side
        full = _full_resolution(weights_file, round(relative_min))
        min_side = MIN_SIZE_MARGIN * relative_min
        quick, reference = fast.detect(image), full.detect(image)
        for found, other, way in ((reference, quick, "full size"), (quick, reference, "downscaled")):
            for face in _confident(found, min_side):
                best = max((_iou(face.box, match.box) for match in other), default=0.0)
                if best < MIN_IOU:
                    disagreements.append(f"{photo}: a face found {way} has best IoU {best:.2f} the other way")

    assert len(photos) >= 20
    assert disagreements == []


@pytest.mark.parametrize("max_side", [160, 100_000])
def test_boxes_stay_inside_the_original_image(weights_file: tuple[Path, str], faces_dir: Path, max_side: int) -> None:
    image = Image.open(faces_dir / "_groups/1_multiface.jpg").convert("RGB")

    faces = _engine(weights_file, max_side).detect(image)

    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= image.width
        assert 0 <= y1 < y2 <= image.height
