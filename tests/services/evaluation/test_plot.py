"""The evaluation PNG: written, readable, and drawn for the edge cases eval meets on small data sets."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from app.services.evaluation.metrics import roc_curve, threshold_at_far
from app.services.evaluation.plot import write_plot

FIGURE_PIXELS = (1300, 500)


def _overlapping_scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(0.6, 0.12, 500), -1, 1), np.clip(rng.normal(0.1, 0.12, 5_000), -1, 1)


def _assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == FIGURE_PIXELS
        image.verify()


def test_write_plot_writes_a_png_with_both_panels(tmp_path: Path) -> None:
    genuine, impostor = _overlapping_scores()
    suggested = threshold_at_far(genuine=genuine, impostor=impostor, target_far=1e-2)
    assert suggested is not None

    written = write_plot(
        path=tmp_path / "eval.png",
        roc=roc_curve(genuine=genuine, impostor=impostor),
        genuine=genuine,
        impostor=impostor,
        configured_threshold=0.4,
        suggested_threshold=suggested.threshold,
        suggested_label="FAR 1e-2",
    )

    assert written == tmp_path / "eval.png"
    _assert_png(written)


def test_write_plot_draws_far_zero_points_on_the_log_axis(tmp_path: Path) -> None:
    # Fully separated scores: every threshold between them has FAR 0, the configured one included.
    genuine, impostor = np.array([0.8, 0.9, 0.95]), np.linspace(-0.2, 0.3, 200)

    written = write_plot(
        path=tmp_path / "separated.png",
        roc=roc_curve(genuine=genuine, impostor=impostor),
        genuine=genuine,
        impostor=impostor,
        configured_threshold=0.5,
        suggested_threshold=0.31,
        suggested_label="FAR 1e-2",
    )

    _assert_png(written)


def test_write_plot_without_impostor_scores_shows_the_genuine_histogram_alone(tmp_path: Path) -> None:
    genuine = np.array([0.7, 0.8, 0.75])

    written = write_plot(
        path=str(tmp_path / "no_impostors.png"),
        roc=roc_curve(genuine=genuine, impostor=[]),
        genuine=genuine,
        impostor=[],
        configured_threshold=0.5,
        suggested_threshold=None,
        suggested_label="FAR 1e-3",
    )

    _assert_png(written)


def test_write_plot_without_any_scores_still_writes_the_figure(tmp_path: Path) -> None:
    written = write_plot(
        path=tmp_path / "empty.png",
        roc=roc_curve(genuine=[], impostor=[]),
        genuine=[],
        impostor=[],
        configured_threshold=None,
        suggested_threshold=None,
        suggested_label="",
    )

    _assert_png(written)


def test_write_plot_leaves_the_process_matplotlib_backend_alone(tmp_path: Path) -> None:
    backend = matplotlib.rcParams["backend"]
    genuine, impostor = _overlapping_scores()

    write_plot(
        path=tmp_path / "eval.png",
        roc=roc_curve(genuine=genuine, impostor=impostor),
        genuine=genuine,
        impostor=impostor,
        configured_threshold=0.4,
        suggested_threshold=None,
        suggested_label="",
    )

    assert matplotlib.rcParams["backend"] == backend
