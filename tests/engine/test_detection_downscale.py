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
test_engine.py.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from app.engine.build import EngineConfig, onnx_detector
from app.engine.engine import EngineDescription, FaceEngine
from app.engine.faces import Crops, DetectedFace, Embeddings
from tests.engine.conftest import load_photo

MIN_PROBABILITY = 0.9
MIN_IOU = 0.8
MIN_SIZE_MARGIN = 1.25


class _NoEmbedder:
    """Detection only: nothing here embeds."""

    backend = "none"

    def embed(self, crops: Crops) -> Embeddings:
        raise AssertionError("detection tests do not embed")


@pytest.fixture(scope="module")
def make_engine(
    weights_file: tuple[Path, str], shared_cache_dir: Path, engine: FaceEngine
) -> Callable[..., FaceEngine]:
    """Engines with this detection setting; the session engine has made the exports already."""

    def make(*, max_side: int, min_face_px: int = 40) -> FaceEngine:
        detector = onnx_detector(cache_dir=shared_cache_dir, threads=1, min_face_px=min_face_px)
        description = EngineDescription(device="cpu", detector="onnx", embedder="none", model_id="t")
        return FaceEngine(detector=detector, embedder=_NoEmbedder(), description=description, detect_max_side=max_side)

    return make


def _confident(faces: list[DetectedFace], *, min_side: float) -> list[DetectedFace]:
    return [f for f in faces if f.probability >= MIN_PROBABILITY and min(f.width, f.height) >= min_side]


def _iou(a: tuple[float, ...], *, b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _large_photos(faces_dir: Path, *, max_side: int) -> list[str]:
    with (faces_dir / "manifest.csv").open() as manifest:
        rows = list(csv.DictReader(manifest))
    return [
        row["path"]
        for row in rows
        if not row["path"].startswith("_noface") and max(int(row["width"]), int(row["height"])) > max_side
    ]


def test_default_downscaled_detection_matches_full_resolution_on_labelled_photos(
    make_engine: Callable[..., FaceEngine], faces_dir: Path
) -> None:
    defaults = EngineConfig(weights_path=Path(), weights_sha256="", model_id="t", cache_dir=Path())
    fast = make_engine(max_side=defaults.detect_max_side)
    photos = _large_photos(faces_dir, max_side=defaults.detect_max_side)
    disagreements: list[str] = []

    for photo in photos:
        image = load_photo(faces_dir, photo)
        relative_min = defaults.detector_min_face_px * max(image.size) / defaults.detect_max_side
        full = make_engine(max_side=100_000, min_face_px=round(relative_min))
        min_side = MIN_SIZE_MARGIN * relative_min
        quick, reference = fast.detect(image), full.detect(image)
        for found, other, way in ((reference, quick, "full size"), (quick, reference, "downscaled")):
            for face in _confident(found, min_side=min_side):
                best = max((_iou(face.box, b=match.box) for match in other), default=0.0)
                if best < MIN_IOU:
                    disagreements.append(f"{photo}: a face found {way} has best IoU {best:.2f} the other way")

    assert len(photos) >= 20
    assert disagreements == []


@pytest.mark.parametrize("max_side", [160, 100_000])
def test_boxes_stay_inside_the_original_image(
    make_engine: Callable[..., FaceEngine], faces_dir: Path, max_side: int
) -> None:
    image = Image.open(faces_dir / "_groups/1_multiface.jpg").convert("RGB")

    faces = make_engine(max_side=max_side).detect(image)

    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= image.width
        assert 0 <= y1 < y2 <= image.height
