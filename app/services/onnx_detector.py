"""MTCNN on ONNX Runtime: the CPU detection path, the same detector as facenet-pytorch's.

PNet, RNet and ONet are exported from the MTCNN the engine built (weights from the
facenet-pytorch wheel) and cached as `<cache_dir>/mtcnn-<sha256 of their weights>-<net>.onnx`
(see app.services.onnx_cache). Each session must reproduce its torch net on a fixed input.

The glue around the nets is facenet-pytorch's `detect_face` redone in numpy, step for step: the
scale pyramid, candidate generation, the same NMS rules (torchvision's own `nms`, compiled, for
the first two stages; "Min" overlap for the last), box regression, squaring and clipping. Its two resamplings (each
pyramid level, and every candidate's 24x24 or 48x48 crop) are torch's `interpolate(mode="area")`,
that is adaptive average pooling: each output pixel is the plain mean of the input pixels in
rows floor(i*H/h) .. ceil((i+1)*H/h) and likewise columns. Here every such mean comes from one
integer integral image, so no window is summed twice, and the boxes match torch's to float
rounding (tests/services/test_onnx_detector.py checks it on ../shared/faces).

Why not a faster resampler: PIL's BOX filter weighs partly covered pixels by coverage, and with
it the detector found a different set of faces on 7 of 204 photos in ../shared/faces.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
import torch
import torchvision
from facenet_pytorch import MTCNN
from PIL import Image

from app.services.onnx_cache import ExportSpec, OnnxModelError, cached_session, default_threads, run_checked

logger = logging.getLogger(__name__)

# Largest difference allowed between a net's ONNX and torch outputs on the self-check input.
PARITY_MAX_ABS = 1e-4
NETS = ("pnet", "rnet", "onet")
_OUTPUTS: dict[str, tuple[str, ...]] = {
    "pnet": ("regression", "probability"),
    "rnet": ("regression", "probability"),
    "onet": ("regression", "landmarks", "probability"),
}
_CROP = {"rnet": 24, "onet": 48}

Float = npt.NDArray[np.float32]
Int = npt.NDArray[np.int64]
Integral = npt.NDArray[np.int32] | npt.NDArray[np.int64]


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


def mtcnn_sha256(detector: MTCNN) -> str:
    """SHA-256 of the three nets' parameters, the key their exports are cached under."""
    digest = hashlib.sha256()
    for name in NETS:
        for key, tensor in sorted(getattr(detector, name).state_dict().items()):
            digest.update(f"{name}.{key}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _check_input(name: str) -> torch.Tensor:
    # Fixed, shaped like the normalised pixels each net sees ([-1, 1]); PNet's is oddly sized.
    shape = {"pnet": (1, 3, 37, 53), "rnet": (3, 3, 24, 24), "onet": (3, 3, 48, 48)}[name]
    generator = torch.Generator().manual_seed(20160411)
    return torch.rand(shape, generator=generator) * 2.0 - 1.0


def export_spec(name: str) -> ExportSpec:
    if name == "pnet":
        # PNet is fully convolutional: one image, any size from 12x12 (the smallest pyramid level).
        dynamic = {2: torch.export.Dim("height", min=12, max=16384), 3: torch.export.Dim("width", min=12, max=16384)}
    else:
        dynamic = {0: torch.export.Dim("candidates", min=1, max=1 << 20)}
    return ExportSpec(
        what=f"MTCNN's {name.upper()}",
        example=(_check_input(name),),
        input_names=["pixels"],
        output_names=_OUTPUTS[name],
        dynamic_shapes=(dynamic,),
    )


class OnnxMtcnn:
    """facenet-pytorch's MTCNN.detect for one RGB image, with the three nets on ONNX Runtime."""

    def __init__(self, detector: MTCNN, *, cache_dir: Path, threads: int = 0) -> None:
        self.min_face_size = int(detector.min_face_size)
        self.thresholds = tuple(float(t) for t in detector.thresholds)
        self.factor = float(detector.factor)
        self.threads = threads if threads > 0 else default_threads()
        key = mtcnn_sha256(detector)
        self.paths = {name: cache_dir / f"mtcnn-{key}-{name}.onnx" for name in NETS}
        self.exported = False
        self._sessions: dict[str, ort.InferenceSession] = {}
        for name in NETS:
            net = getattr(detector, name)
            session, exported = cached_session(
                net,
                self.paths[name],
                key_sha256=key,
                spec=export_spec(name),
                threads=self.threads,
                check=_parity_check(net, name, self.paths[name]),
            )
            self._sessions[name] = session
            self.exported |= exported
        logger.info("ONNX Runtime detector ready: MTCNN %s, %d threads", key[:12], self.threads)

    def detect(self, image: Image.Image) -> Detections:
        """Faces in an RGB image, in the order facenet-pytorch's detect_face returns them."""
        pixels = np.asarray(image.convert("RGB") if image.mode != "RGB" else image, dtype=np.uint8)
        height, width = pixels.shape[:2]
        integral = integral_image(pixels)
        candidates = self._stage_one(integral, height, width)
        if len(candidates) == 0:
            return Detections.none()
        candidates = self._stage_two(integral, candidates, height, width)
        if len(candidates) == 0:
            return Detections.none()
        return self._stage_three(integral, candidates, height, width)

    def _run(self, name: str, pixels: Float) -> list[Float]:
        return list(self._sessions[name].run(None, {"pixels": pixels}))

    def _scales(self, height: int, width: int) -> list[float]:
        scale = 12.0 / self.min_face_size
        smallest = min(height, width) * scale
        scales: list[float] = []
        while smallest >= 12:
            scales.append(scale)
            scale *= self.factor
            smallest *= self.factor
        return scales

    def _stage_one(self, integral: Integral, height: int, width: int) -> Float:
        """PNet over the pyramid: rows of (x1, y1, x2, y2, score, 4 regressions), squared."""
        per_scale: list[Float] = []
        for scale in self._scales(height, width):
            level = area_resize(integral, int(height * scale + 1), int(width * scale + 1))
            regression, probability = self._run("pnet", _normalise(level)[None])
            boxes = _pnet_boxes(regression[0], probability[0, 1], scale, self.thresholds[0])
            if len(boxes):
                per_scale.append(boxes[nms_union(boxes[:, :4], boxes[:, 4], 0.5)])
        if not per_scale:
            return np.zeros((0, 5), np.float32)
        boxes = np.concatenate(per_scale)
        boxes = boxes[nms_union(boxes[:, :4], boxes[:, 4], 0.7)]
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
        return _square(refined)

    def _stage_two(self, integral: Integral, boxes: Float, height: int, width: int) -> Float:
        """RNet rescores and refines the candidates."""
        usable, crops = _candidate_crops(integral, boxes, _CROP["rnet"], height, width)
        boxes = boxes[usable]
        regression, probability = self._run("rnet", crops)
        keep = probability[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], probability[keep, 1:2]], axis=1)
        regression = regression[keep]
        pick = nms_union(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[pick], regression[pick]))

    def _stage_three(self, integral: Integral, boxes: Float, height: int, width: int) -> Detections:
        """ONet scores, refines, and places the five landmarks."""
        usable, crops = _candidate_crops(integral, boxes, _CROP["onet"], height, width)
        boxes = boxes[usable]
        regression, landmarks, probability = self._run("onet", crops)
        keep = probability[:, 1] > self.thresholds[2]
        boxes = np.concatenate([boxes[keep, :4], probability[keep, 1:2]], axis=1)
        regression, landmarks = regression[keep], landmarks[keep]
        box_w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        box_h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack(
            [box_w * landmarks[:, :5] + boxes[:, 0:1] - 1, box_h * landmarks[:, 5:10] + boxes[:, 1:2] - 1], axis=2
        )
        boxes = _regress(boxes, regression)
        pick = nms_min(boxes[:, :4], boxes[:, 4], 0.7)
        return Detections(
            boxes=np.ascontiguousarray(boxes[pick, :4], dtype=np.float32),
            probabilities=np.ascontiguousarray(boxes[pick, 4], dtype=np.float32),
            landmarks=np.ascontiguousarray(points[pick], dtype=np.float32),
        )


def _parity_check(net: torch.nn.Module, name: str, path: Path) -> Callable[[ort.InferenceSession], None]:
    pixels = _check_input(name)
    device = next(net.parameters()).device
    with torch.inference_mode():
        expected = [output.float().cpu().numpy() for output in net(pixels.to(device))]

    def check(session: ort.InferenceSession) -> None:
        actual = run_checked(session, {"pixels": pixels.numpy()}, what=str(path))
        for want, got in zip(expected, actual, strict=True):
            difference = float(np.max(np.abs(want - np.asarray(got)))) if want.shape == got.shape else np.inf
            if not difference <= PARITY_MAX_ABS:  # also catches NaN
                raise OnnxModelError(
                    f"{path} does not reproduce the torch {name} (max difference {difference:.2e} > {PARITY_MAX_ABS})"
                )

    return check


# --- area resampling from an integral image ---------------------------------------------------


def integral_image(pixels: npt.NDArray[np.uint8]) -> Integral:
    """S[y, x, c] = sum of pixels[:y, :x, c], exact in integers."""
    height, width, channels = pixels.shape
    dtype = np.int32 if 255 * height * width < 2**31 else np.int64
    rows = np.zeros((height + 1, width * channels), dtype=dtype)
    flat = pixels.reshape(height, width * channels)
    for y in range(height):  # row by row: numpy's cumsum along axis 0 is several times slower
        np.add(rows[y], flat[y], out=rows[y + 1])
    integral = np.zeros((height + 1, width + 1, channels), dtype=dtype)
    np.cumsum(rows.reshape(height + 1, width, channels), axis=1, out=integral[:, 1:])
    return integral


def _windows(start: Int, length: Int, size: int) -> tuple[Int, Int]:
    """Adaptive average pooling's input window [lo, hi) for each of `size` outputs, as torch computes it."""
    index = np.arange(size, dtype=np.int64)
    lo = start[..., None] + (index * length[..., None]) // size
    hi = start[..., None] + ((index + 1) * length[..., None] + size - 1) // size
    return lo, hi


def area_resize(integral: Integral, out_height: int, out_width: int) -> Float:
    """The whole image resized to out_height x out_width like torch's interpolate(mode="area"): [h, w, 3]."""
    height, width = integral.shape[0] - 1, integral.shape[1] - 1
    zero = np.zeros((), dtype=np.int64)
    row_lo, row_hi = _windows(zero, np.asarray(height), out_height)
    col_lo, col_hi = _windows(zero, np.asarray(width), out_width)
    rows = np.take(integral, row_hi, axis=0) - np.take(integral, row_lo, axis=0)
    sums = np.take(rows, col_hi, axis=1) - np.take(rows, col_lo, axis=1)
    counts = (row_hi - row_lo)[:, None] * (col_hi - col_lo)[None, :]
    return _means(sums, counts[..., None])


def area_crops(integral: Integral, top: Int, left: Int, height: Int, width: Int, size: int) -> Float:
    """Each region [top, top+height) x [left, left+width) resized to size x size: [n, size, size, 3]."""
    row_lo, row_hi = _windows(top, height, size)
    col_lo, col_hi = _windows(left, width, size)
    # One gather per corner from the integral flattened to [pixels, 3]: cheaper than 2-D fancy indexing.
    stride = integral.shape[1]
    flat = integral.reshape(-1, integral.shape[2])
    r0, r1 = (row_lo * stride)[:, :, None], (row_hi * stride)[:, :, None]
    c0, c1 = col_lo[:, None, :], col_hi[:, None, :]
    sums = flat[r1 + c1] - flat[r0 + c1] - flat[r1 + c0] + flat[r0 + c0]
    counts = (row_hi - row_lo)[:, :, None] * (col_hi - col_lo)[:, None, :]
    return _means(sums, counts[..., None])


# Windows up to this many pixels have sums below 2**24, which float32 holds exactly.
_FLOAT32_EXACT_PIXELS = (1 << 24) // 255


def _means(sums: Integral, counts: Int) -> Float:
    """sums / counts, rounded to float32. While both are exact in float32, one float32 division
    rounds exactly as the float64 division rounded to float32 does, at a fraction of its cost."""
    if counts.size and int(counts.max()) > _FLOAT32_EXACT_PIXELS:
        return (sums / counts).astype(np.float32)
    means: Float = sums.astype(np.float32)
    means /= counts.astype(np.float32)
    return means


def _normalise(pixels: Float) -> Float:
    """[..., h, w, 3] pixels 0-255 to MTCNN's input, [..., 3, h, w] in about [-1, 1]."""
    moved = np.moveaxis((pixels - np.float32(127.5)) * np.float32(0.0078125), -1, -3)
    return np.ascontiguousarray(moved, dtype=np.float32)


def _candidate_crops(
    integral: Integral, boxes: Float, size: int, height: int, width: int
) -> tuple[npt.NDArray[np.bool_], Float]:
    """Which boxes can be cropped, and their crops for RNet or ONet, as detect_face cuts them."""
    corners = np.trunc(boxes[:, :4]).astype(np.int64)
    x = np.maximum(corners[:, 0], 1)
    y = np.maximum(corners[:, 1], 1)
    ex = np.minimum(corners[:, 2], width)
    ey = np.minimum(corners[:, 3], height)
    usable = (ey > y - 1) & (ex > x - 1)
    x, y, ex, ey = x[usable], y[usable], ex[usable], ey[usable]
    # detect_face crops rows y-1 .. ey-1 and columns x-1 .. ex-1 (1-based box corners).
    crops = area_crops(integral, y - 1, x - 1, ey - y + 1, ex - x + 1, size)
    return usable, _normalise(crops)


# --- boxes --------------------------------------------------------------------------------------


def _pnet_boxes(regression: Float, probability: Float, scale: float, threshold: float) -> Float:
    """generateBoundingBox: a 12x12 cell every 2 pixels of the level, back in image pixels."""
    ys, xs = np.nonzero(probability >= threshold)
    if len(ys) == 0:
        return np.zeros((0, 9), np.float32)
    cells = np.stack([xs, ys], axis=1).astype(np.float32)
    top_left = np.floor((2 * cells + 1) / np.float32(scale))
    bottom_right = np.floor((2 * cells + 12) / np.float32(scale))
    return np.concatenate(
        [top_left, bottom_right, probability[ys, xs][:, None], regression[:, ys, xs].T], axis=1
    ).astype(np.float32)


def _square(boxes: Float) -> Float:
    """rerec: each box grown to a square about its centre."""
    boxes = boxes.copy()
    height = boxes[:, 3] - boxes[:, 1]
    width = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(width, height)
    boxes[:, 0] = boxes[:, 0] + width * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + height * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _regress(boxes: Float, regression: Float) -> Float:
    """bbreg: shift each corner by the net's regression, in units of the box's (1-based) size."""
    boxes = boxes.copy()
    width = boxes[:, 2] - boxes[:, 0] + 1
    height = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, 0] += regression[:, 0] * width
    boxes[:, 1] += regression[:, 1] * height
    boxes[:, 2] += regression[:, 2] * width
    boxes[:, 3] += regression[:, 3] * height
    return boxes


def nms_union(boxes: Float, scores: Float, threshold: float) -> Int:
    """torchvision.ops.nms, as detect_face calls it: best first, drop boxes overlapping a kept one past threshold."""
    kept: torch.Tensor = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold)
    return kept.numpy()


def nms_min(boxes: Float, scores: Float, threshold: float) -> Int:
    """detect_face's nms_numpy with "Min": overlap over the smaller box, areas 1-based, same sort."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep: list[int] = []
    while order.size:
        best, rest = order[-1], order[:-1]
        keep.append(int(best))
        overlap_w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        overlap_h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = overlap_w * overlap_h / np.minimum(area[best], area[rest])
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)
