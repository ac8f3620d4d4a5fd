"""Area resampling from one integer integral image: torch's interpolate(mode="area"), exactly.

torch's area interpolation is adaptive average pooling: each output pixel is the plain mean of
the input pixels in rows floor(i*H/h) .. ceil((i+1)*H/h) and likewise columns. MTCNN resamples
twice (each pyramid level, and every candidate's 24x24 or 48x48 crop); here every such mean
comes from one integral image, so no window is summed twice, and the boxes match torch's to
float rounding.

Why not a faster resampler: PIL's BOX filter weighs partly covered pixels by coverage, and with
it the detector found a different set of faces on 7 of 204 photos in ../shared/faces.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Float = npt.NDArray[np.float32]
Int = npt.NDArray[np.int64]
Integral = npt.NDArray[np.int32] | npt.NDArray[np.int64]


def integral_image(pixels: npt.NDArray[np.uint8]) -> Integral:
    """S[y, x, c] = sum of pixels[:y, :x, c], exact in integers."""
    height, width, channels = pixels.shape
    dtype = np.int32 if 255 * height * width < 2**31 else np.int64
    integral = np.zeros((height + 1, width + 1, channels), dtype=dtype)
    # Along each row first (contiguous, one call), then the rows added down one by one: numpy's
    # cumsum along axis 0 walks the columns with a stride and is several times slower.
    np.cumsum(pixels, axis=1, dtype=dtype, out=integral[1:, 1:])
    rows = integral.reshape(height + 1, -1)
    for y in range(1, height + 1):
        np.add(rows[y], rows[y - 1], out=rows[y])
    return integral


def _windows(start: Int, *, length: Int, size: int) -> tuple[Int, Int]:
    """Adaptive average pooling's input window [lo, hi) for each of `size` outputs, as torch computes it."""
    index = np.arange(size, dtype=np.int64)
    lo = start[..., None] + (index * length[..., None]) // size
    hi = start[..., None] + ((index + 1) * length[..., None] + size - 1) // size
    return lo, hi


def area_resize(integral: Integral, *, height: int, width: int) -> Float:
    """The whole image resized to height x width like torch's interpolate(mode="area"): [h, w, 3]."""
    zero = np.zeros((), dtype=np.int64)
    row_lo, row_hi = _windows(zero, length=np.asarray(integral.shape[0] - 1), size=height)
    col_lo, col_hi = _windows(zero, length=np.asarray(integral.shape[1] - 1), size=width)
    rows = np.take(integral, row_hi, axis=0) - np.take(integral, row_lo, axis=0)
    sums = np.take(rows, col_hi, axis=1) - np.take(rows, col_lo, axis=1)
    counts = (row_hi - row_lo)[:, None] * (col_hi - col_lo)[None, :]
    return _means(sums, counts=counts[..., None])


def area_crops(integral: Integral, *, top: Int, left: Int, height: Int, width: Int, size: int) -> Float:
    """Each region [top, top+height) x [left, left+width) resized to size x size: [n, size, size, 3]."""
    row_lo, row_hi = _windows(top, length=height, size=size)
    col_lo, col_hi = _windows(left, length=width, size=size)
    # The four corners of every window in one np.take from the integral flattened to [pixels, 3]:
    # about twice as fast as four fancy-indexing gathers.
    stride = integral.shape[1]
    flat = integral.reshape(-1, integral.shape[2])
    rows = np.stack([row_lo * stride, row_hi * stride])[:, None, :, :, None]  # [2, 1, n, size, 1]
    cols = np.stack([col_lo, col_hi])[None, :, :, None, :]  # [1, 2, n, 1, size]
    corner = np.take(flat, rows + cols, axis=0)  # [row lo/hi, column lo/hi, n, size, size, 3]
    sums = corner[1, 1] - corner[0, 1] - corner[1, 0] + corner[0, 0]
    counts = (row_hi - row_lo)[:, :, None] * (col_hi - col_lo)[:, None, :]
    return _means(sums, counts=counts[..., None])


# Windows up to this many pixels have sums below 2**24, which float32 holds exactly.
_FLOAT32_EXACT_PIXELS = (1 << 24) // 255


def _means(sums: Integral, *, counts: Int) -> Float:
    """sums / counts, rounded to float32. While both are exact in float32, one float32 division
    rounds exactly as the float64 division rounded to float32 does, at a fraction of its cost."""
    if counts.size and int(counts.max()) > _FLOAT32_EXACT_PIXELS:
        return (sums / counts).astype(np.float32)
    means: Float = sums.astype(np.float32)
    means /= counts.astype(np.float32)
    return means


def normalise(pixels: Float) -> Float:
    """[..., h, w, 3] pixels 0-255 to MTCNN's input, [..., 3, h, w] in about [-1, 1]."""
    moved = np.moveaxis((pixels - np.float32(127.5)) * np.float32(0.0078125), -1, -3)
    return np.ascontiguousarray(moved, dtype=np.float32)


def candidate_crops(
    integral: Integral, *, boxes: Float, size: int, height: int, width: int
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
    crops = area_crops(integral, top=y - 1, left=x - 1, height=ey - y + 1, width=ex - x + 1, size=size)
    return usable, normalise(crops)
