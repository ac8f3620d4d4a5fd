"""How usable a face is for recognition, measured on the 160x160 crop the embedder sees and on the
five landmarks: sharpness, pose and exposure. The limits are policy (app.services.quality)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.engine.faces import Crops, DetectedFace

# Grey levels at or beyond these count as clipped (lost to under- or over-exposure).
DARK_LEVEL = 5.0
BRIGHT_LEVEL = 250.0
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class FaceQuality:
    """Measured values of one face.

    sharpness: variance of the Laplacian of the grey crop (blurred or upscaled faces score low).
    roll_degrees: tilt of the eye line from horizontal.
    yaw_offset: the nose's offset from the eyes' midpoint along the eye line, in half eye
      distances: 0 facing the camera, about 1 when the nose lines up with an eye (a profile).
    brightness: mean grey level of the crop, 0-255.
    clipped_fraction: share of crop pixels at or below 5 or at or above 250.
    """

    sharpness: float
    roll_degrees: float
    yaw_offset: float
    brightness: float
    clipped_fraction: float


def grey(crop: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A standardised crop [3, 160, 160] back to grey levels 0-255 [160, 160]."""
    pixels = crop * np.float32(128.0) + np.float32(127.5)
    return np.tensordot(_LUMA, pixels, axes=1).astype(np.float32)


def laplacian_variance(image: npt.NDArray[np.float32]) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels."""
    centre = image[1:-1, 1:-1]
    laplacian = image[:-2, 1:-1] + image[2:, 1:-1] + image[1:-1, :-2] + image[1:-1, 2:] - 4.0 * centre
    return float(np.var(laplacian))


def pose(face: DetectedFace) -> tuple[float, float]:
    """(roll in degrees, yaw offset) from the eyes and the nose, in any pixel frame."""
    if len(face.landmarks) < 3:
        return 0.0, 0.0
    (left_x, left_y), (right_x, right_y), (nose_x, nose_y) = face.landmarks[:3]
    eye_x, eye_y = right_x - left_x, right_y - left_y
    distance = math.hypot(eye_x, eye_y)
    if distance == 0.0:
        return 0.0, 0.0
    roll = math.degrees(math.atan2(eye_y, eye_x))
    middle_x, middle_y = (left_x + right_x) / 2.0, (left_y + right_y) / 2.0
    along = ((nose_x - middle_x) * eye_x + (nose_y - middle_y) * eye_y) / distance
    return roll, along / (distance / 2.0)


def measure(face: DetectedFace, *, crop: npt.NDArray[np.float32]) -> FaceQuality:
    """The face's quality from its standardised crop [3, 160, 160] and its landmarks."""
    levels = grey(crop)
    roll, yaw = pose(face)
    clipped = float(np.mean((levels <= DARK_LEVEL) | (levels >= BRIGHT_LEVEL)))
    return FaceQuality(
        sharpness=laplacian_variance(levels),
        roll_degrees=roll,
        yaw_offset=yaw,
        brightness=float(np.mean(levels)),
        clipped_fraction=clipped,
    )


def measure_all(faces: list[DetectedFace], *, crops: Crops) -> list[FaceQuality]:
    return [measure(face, crop=crop) for face, crop in zip(faces, crops, strict=True)]
