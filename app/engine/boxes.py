"""MTCNN's box arithmetic, as facenet-pytorch's detect_face does it, in float32 numpy.

Both non-maximum suppressions are facenet-pytorch's own rules: torchvision's `nms` (IoU, areas
without the +1, a stable sort by score) for the first two stages, and detect_face's
`nms_numpy` with "Min" overlap for the last. tests/engine/test_mtcnn.py checks each against
the library's function.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Float = npt.NDArray[np.float32]
Int = npt.NDArray[np.int64]


def pnet_boxes(regression: Float, *, probability: Float, scale: float, threshold: float) -> Float:
    """generateBoundingBox: a 12x12 cell every 2 pixels of the level, back in image pixels.

    Rows are (x1, y1, x2, y2, score, 4 regressions).
    """
    ys, xs = np.nonzero(probability >= threshold)
    if len(ys) == 0:
        return np.zeros((0, 9), np.float32)
    cells = np.stack([xs, ys], axis=1).astype(np.float32)
    top_left = np.floor((2 * cells + 1) / np.float32(scale))
    bottom_right = np.floor((2 * cells + 12) / np.float32(scale))
    return np.concatenate(
        [top_left, bottom_right, probability[ys, xs][:, None], regression[:, ys, xs].T], axis=1
    ).astype(np.float32)


def square(boxes: Float) -> Float:
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


def regress(boxes: Float, *, regression: Float) -> Float:
    """bbreg: shift each corner by the net's regression, in units of the box's (1-based) size."""
    boxes = boxes.copy()
    width = boxes[:, 2] - boxes[:, 0] + 1
    height = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, 0] += regression[:, 0] * width
    boxes[:, 1] += regression[:, 1] * height
    boxes[:, 2] += regression[:, 2] * width
    boxes[:, 3] += regression[:, 3] * height
    return boxes


def nms_union(boxes: Float, *, threshold: float) -> Int:
    """torchvision.ops.nms on the CPU over rows (x1, y1, x2, y2, score, ...): best first (stable on
    ties), drop boxes whose IoU with a kept one exceeds the threshold. Kept indices, best first.

    The IoU of every pair with the kept boxes is computed a block of rows at a time, in
    torchvision's float32 arithmetic; the greedy pass then only reads rows of that block.
    """
    boxes = np.ascontiguousarray(boxes, dtype=np.float32)
    order = np.argsort(-boxes[:, 4], kind="stable")
    ranked = boxes[order]
    suppressed = np.zeros(len(ranked), dtype=bool)
    keep: list[int] = []
    for start in range(0, len(ranked), _NMS_BLOCK):
        rows = np.arange(start, min(start + _NMS_BLOCK, len(ranked)))
        rows = rows[~suppressed[rows]]
        if rows.size == 0:
            continue
        overlaps = _iou(ranked[rows], others=ranked[start:]) > threshold
        for row, position in enumerate(rows):
            if suppressed[position]:
                continue
            keep.append(int(position))
            suppressed[start:] |= overlaps[row]
    return np.asarray(order[keep], dtype=np.int64)


# Rows of IoU computed at a time: bounds the matrix (1024 x n float32) for crowded photos.
_NMS_BLOCK = 1024


def _iou(boxes: Float, *, others: Float) -> npt.NDArray[np.float64]:
    """IoU of each box with each other box, as torchvision computes it (float32, areas without +1)."""
    x1, y1, x2, y2 = (boxes[:, k, None] for k in range(4))
    ox1, oy1, ox2, oy2 = (others[None, :, k] for k in range(4))
    inter = np.maximum(np.float32(0), np.minimum(x2, ox2) - np.maximum(x1, ox1)) * np.maximum(
        np.float32(0), np.minimum(y2, oy2) - np.maximum(y1, oy1)
    )
    union = ((x2 - x1) * (y2 - y1) + (ox2 - ox1) * (oy2 - oy1)) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        # torchvision compares the float IoU with the double threshold.
        iou: npt.NDArray[np.float64] = (inter / union).astype(np.float64)
    return iou


def nms_min(boxes: Float, *, threshold: float) -> Int:
    """detect_face's nms_numpy with "Min" over rows (x1, y1, x2, y2, score, ...): overlap over the
    smaller box, areas 1-based, same sort."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(boxes[:, 4])
    keep: list[int] = []
    while order.size:
        best, rest = order[-1], order[:-1]
        keep.append(int(best))
        overlap_w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        overlap_h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = overlap_w * overlap_h / np.minimum(area[best], area[rest])
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)
