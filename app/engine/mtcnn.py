"""MTCNN on ONNX Runtime: the CPU detector, the same detector as facenet-pytorch's.

PNet, RNet and ONet are exported once from the weights inside the facenet-pytorch wheel (see
app.engine.export) and cached as `<cache_dir>/mtcnn-<sha256 of the three weight files>-<net>.onnx`.
Opening them needs no torch. The glue around the nets is facenet-pytorch's `detect_face` redone
in numpy, step for step: the scale pyramid, candidate generation, the same NMS rules, box
regression, squaring and clipping, with its area resampling computed from one integral image
(app.engine.resample). tests/engine/test_mtcnn.py checks that it finds the same faces as
facenet-pytorch on every labelled photo.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
from PIL import Image

from app.engine.boxes import Float, nms_min, nms_union, pnet_boxes, regress, square
from app.engine.faces import DetectedFace
from app.engine.resample import Integral, area_resize, candidate_crops, integral_image, normalise

logger = logging.getLogger(__name__)

NETS = ("pnet", "rnet", "onet")
# facenet-pytorch's MTCNN defaults (tests check them against the library's own).
THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709
OUTPUTS: dict[str, tuple[str, ...]] = {
    "pnet": ("regression", "probability"),
    "rnet": ("regression", "probability"),
    "onet": ("regression", "landmarks", "probability"),
}
CROP = {"rnet": 24, "onet": 48}
# The fixed self-check input of each net, shaped like the normalised pixels it sees; PNet's is oddly sized.
CHECK_SHAPES = {"pnet": (1, 3, 37, 53), "rnet": (3, 3, 24, 24), "onet": (3, 3, 48, 48)}
CHECK_SEED = 20160411
# Largest difference allowed between a net's ONNX outputs and its torch (or recorded) outputs.
PARITY_MAX_ABS = 1e-4


@dataclass(frozen=True)
class Detections:
    """Faces in the pixels of the image given: boxes [n, 4] (x1, y1, x2, y2), probabilities [n], landmarks [n, 5, 2]."""

    boxes: Float
    probabilities: Float
    landmarks: Float

    @staticmethod
    def none() -> Detections:
        return Detections(
            boxes=np.zeros((0, 4), np.float32),
            probabilities=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32),
        )

    def faces(self) -> list[DetectedFace]:
        return [
            DetectedFace(
                box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                landmarks=tuple((float(x), float(y)) for x, y in points),
                probability=float(probability),
            )
            for box, probability, points in zip(self.boxes, self.probabilities, self.landmarks, strict=True)
        ]


def weights_dir() -> Path:
    """facenet-pytorch's bundled MTCNN weights, found without importing the package (which imports torch)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("facenet-pytorch is not installed: its MTCNN weights ship inside the wheel")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def mtcnn_sha256(directory: Path | None = None) -> str:
    """SHA-256 over the three nets' weight files: the key their exports are cached under."""
    directory = directory or weights_dir()
    digest = hashlib.sha256()
    for name in NETS:
        digest.update(name.encode())
        digest.update((directory / f"{name}.pt").read_bytes())
    return digest.hexdigest()


def export_paths(cache_dir: Path, *, key: str) -> dict[str, Path]:
    return {name: cache_dir / f"mtcnn-{key}-{name}.onnx" for name in NETS}


class OnnxMtcnn:
    """facenet-pytorch's MTCNN.detect for one RGB image, with the three nets on ONNX Runtime."""

    backend = "onnx"

    def __init__(self, sessions: dict[str, ort.InferenceSession], *, min_face_size: int) -> None:
        self._sessions = sessions
        self.min_face_size = min_face_size

    def detect(self, image: Image.Image, *, shrink: float = 1.0) -> list[DetectedFace]:
        return self.detections(image, shrink=shrink).faces()

    def detections(self, image: Image.Image, *, shrink: float = 1.0) -> Detections:
        """Faces in an RGB image, in the order facenet-pytorch's detect_face returns them.

        With shrink < 1, the search is that of the image shrunk by that factor (faces from
        min_face_size pixels of the shrunk image), but every resampling is made from this image
        itself, so no shrunk copy is ever made; boxes come back in this image's pixels.
        """
        pixels = np.asarray(image.convert("RGB") if image.mode != "RGB" else image, dtype=np.uint8)
        height, width = pixels.shape[:2]
        integral = integral_image(pixels)
        candidates = self._stage_one(integral, height=height, width=width, shrink=shrink)
        if len(candidates) == 0:
            return Detections.none()
        candidates = self._stage_two(integral, boxes=candidates, height=height, width=width)
        if len(candidates) == 0:
            return Detections.none()
        return self._stage_three(integral, boxes=candidates, height=height, width=width)

    def _run(self, name: str, *, pixels: Float) -> list[Float]:
        return list(self._sessions[name].run(None, {"pixels": pixels}))

    def scales(self, *, height: int, width: int, shrink: float = 1.0) -> list[float]:
        """The pyramid's scales, relative to an image of this size searched as if shrunk by `shrink`."""
        scale = 12.0 / self.min_face_size * shrink
        smallest = min(height, width) * scale
        found: list[float] = []
        while smallest >= 12:
            found.append(scale)
            scale *= FACTOR
            smallest *= FACTOR
        return found

    def _stage_one(self, integral: Integral, *, height: int, width: int, shrink: float) -> Float:
        """PNet over the pyramid: rows of (x1, y1, x2, y2, score), squared."""
        per_scale: list[Float] = []
        for scale in self.scales(height=height, width=width, shrink=shrink):
            level = area_resize(integral, height=int(height * scale + 1), width=int(width * scale + 1))
            regression, probability = self._run("pnet", pixels=normalise(level)[None])
            boxes = pnet_boxes(regression[0], probability=probability[0, 1], scale=scale, threshold=THRESHOLDS[0])
            if len(boxes):
                per_scale.append(boxes[nms_union(boxes, threshold=0.5)])
        if not per_scale:
            return np.zeros((0, 5), np.float32)
        boxes = np.concatenate(per_scale)
        boxes = boxes[nms_union(boxes, threshold=0.7)]
        box_w = boxes[:, 2] - boxes[:, 0]
        box_h = boxes[:, 3] - boxes[:, 1]
        refined = np.stack(
            [
                boxes[:, 0] + boxes[:, 5] * box_w,
                boxes[:, 1] + boxes[:, 6] * box_h,
                boxes[:, 2] + boxes[:, 7] * box_w,
                boxes[:, 3] + boxes[:, 8] * box_h,
                boxes[:, 4],
            ],
            axis=1,
        )
        return square(refined)

    def _stage_two(self, integral: Integral, *, boxes: Float, height: int, width: int) -> Float:
        """RNet rescores and refines the candidates."""
        usable, crops = candidate_crops(integral, boxes=boxes, size=CROP["rnet"], height=height, width=width)
        boxes = boxes[usable]
        regression, probability = self._run("rnet", pixels=crops)
        keep = probability[:, 1] > THRESHOLDS[1]
        boxes = np.concatenate([boxes[keep, :4], probability[keep, 1:2]], axis=1)
        regression = regression[keep]
        pick = nms_union(boxes, threshold=0.7)
        return square(regress(boxes[pick], regression=regression[pick]))

    def _stage_three(self, integral: Integral, *, boxes: Float, height: int, width: int) -> Detections:
        """ONet scores, refines, and places the five landmarks."""
        usable, crops = candidate_crops(integral, boxes=boxes, size=CROP["onet"], height=height, width=width)
        boxes = boxes[usable]
        regression, landmarks, probability = self._run("onet", pixels=crops)
        keep = probability[:, 1] > THRESHOLDS[2]
        boxes = np.concatenate([boxes[keep, :4], probability[keep, 1:2]], axis=1)
        regression, landmarks = regression[keep], landmarks[keep]
        box_w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        box_h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack(
            [box_w * landmarks[:, :5] + boxes[:, 0:1] - 1, box_h * landmarks[:, 5:10] + boxes[:, 1:2] - 1], axis=2
        )
        boxes = regress(boxes, regression=regression)
        pick = nms_min(boxes, threshold=0.7)
        return Detections(
            boxes=np.ascontiguousarray(boxes[pick, :4], dtype=np.float32),
            probabilities=np.ascontiguousarray(boxes[pick, 4], dtype=np.float32),
            landmarks=np.ascontiguousarray(points[pick], dtype=np.float32),
        )


def max_abs_difference(expected: list[npt.NDArray[np.float32]], *, actual: list[npt.NDArray[np.float32]]) -> float:
    """Largest absolute difference between two lists of outputs; inf when their shapes differ or one is NaN."""
    worst = 0.0
    for want, got in zip(expected, actual, strict=True):
        if want.shape != got.shape:
            return float("inf")
        difference = float(np.max(np.abs(want - got))) if want.size else 0.0
        if np.isnan(difference):
            return float("inf")
        worst = max(worst, difference)
    return worst
