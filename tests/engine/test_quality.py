"""Face quality measured from pixels and landmarks: sharpness, pose and exposure."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.faces import DetectedFace
from app.engine.quality import grey, laplacian_variance, measure, pose


def standardised(levels: np.ndarray) -> np.ndarray:
    """A grey image 0-255 [160, 160] as a standardised RGB crop [3, 160, 160]."""
    return np.repeat(((levels.astype(np.float32) - 127.5) / 128.0)[None], 3, axis=0)


def face(*, left: tuple[float, float], right: tuple[float, float], nose: tuple[float, float]) -> DetectedFace:
    return DetectedFace(box=(0, 0, 160, 160), landmarks=(left, right, nose, (60, 120), (100, 120)), probability=1.0)


def test_grey_undoes_the_standardisation() -> None:
    levels = np.random.default_rng(0).integers(0, 256, (160, 160)).astype(np.float32)

    np.testing.assert_allclose(grey(standardised(levels)), levels, atol=1e-3)


def test_a_checkerboard_is_sharp_and_a_flat_crop_is_not() -> None:
    checker = (np.indices((160, 160)).sum(axis=0) % 2) * 255.0
    flat = np.full((160, 160), 128.0)

    assert laplacian_variance(checker.astype(np.float32)) > 1e5
    assert laplacian_variance(flat.astype(np.float32)) == 0.0


@pytest.mark.parametrize("degrees", [0.0, 20.0, -35.0])
def test_roll_is_the_angle_of_the_eye_line(degrees: float) -> None:
    angle = np.radians(degrees)
    right = (80 + 30 * np.cos(angle), 60 + 30 * np.sin(angle))
    left = (80 - 30 * np.cos(angle), 60 - 30 * np.sin(angle))
    nose = (80 - 30 * np.sin(angle), 60 + 30 * np.cos(angle))  # straight below the eyes, in the head's frame

    roll, yaw = pose(face(left=left, right=right, nose=nose))

    assert roll == pytest.approx(degrees, abs=1e-6)
    assert yaw == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("nose_x", "offset"), [(80.0, 0.0), (95.0, 0.5), (50.0, -1.0), (125.0, 1.5)])
def test_yaw_offset_is_the_noses_shift_along_the_eye_line_in_half_eye_distances(nose_x: float, offset: float) -> None:
    roll, yaw = pose(face(left=(50, 60), right=(110, 60), nose=(nose_x, 95)))

    assert roll == pytest.approx(0.0)
    assert yaw == pytest.approx(offset)


def test_brightness_and_clipping_are_read_from_the_grey_levels() -> None:
    levels = np.full((160, 160), 100.0)
    levels[:16] = 255.0  # a tenth of the rows blown out
    levels[16:24] = 0.0  # a twentieth crushed

    quality = measure(face(left=(50, 60), right=(110, 60), nose=(80, 90)), crop=standardised(levels))

    assert quality.clipped_fraction == pytest.approx(0.15, abs=1e-6)
    assert quality.brightness == pytest.approx((16 * 255 + 136 * 100) / 160, abs=1e-3)
