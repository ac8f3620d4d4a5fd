"""The pixels the models see: the detection copy of a photo, and each face's 160x160 crop.

`face_crops` is facenet-pytorch's `extract_face(image, box, 160, margin=0)` followed by
`fixed_image_standardization`, in numpy: the box is truncated to whole pixels and clipped to the
image, cropped and resized with PIL's bilinear filter, then mapped to (x - 127.5) / 128. The
tests check it against the library's own functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from app.engine.faces import CROP_SIZE, Crops, DetectedFace, no_crops


def crop_box(box: Sequence[float], *, width: int, height: int) -> tuple[int, int, int, int]:
    """extract_face's integer crop box: truncated, and clipped to the image."""
    x1, y1, x2, y2 = box
    return (int(max(x1, 0)), int(max(y1, 0)), int(min(x2, width)), int(min(y2, height)))


def face_crop_pixels(image: Image.Image, *, face: DetectedFace) -> Image.Image:
    """The face's 160x160 RGB crop, the box in this image's pixels."""
    box = crop_box(face.box, width=image.width, height=image.height)
    return image.crop(box).resize((CROP_SIZE, CROP_SIZE), Image.Resampling.BILINEAR)


def standardise(pixels: Image.Image) -> Crops:
    """One crop as the embedder's input, [3, 160, 160] float32 in about [-1, 1]."""
    array = np.asarray(pixels, dtype=np.float32)
    standardised = (array - np.float32(127.5)) / np.float32(128.0)
    return np.ascontiguousarray(standardised.transpose(2, 0, 1))


def face_crops(image: Image.Image, *, faces: Sequence[DetectedFace]) -> Crops:
    """The standardised crops of the faces (boxes in this image's pixels), [n, 3, 160, 160]."""
    if not faces:
        return no_crops()
    return np.stack([standardise(face_crop_pixels(image, face=face)) for face in faces])


def downscale(image: Image.Image, *, max_side: int) -> tuple[Image.Image, float]:
    """The image shrunk so that its longest side is at most max_side, and the factor applied."""
    longest = max(image.size)
    if longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), scale
