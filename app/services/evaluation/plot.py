"""One PNG for an evaluation: the ROC on a log false-accept axis, and the two score histograms.

Drawn on a bare Figure with the Agg canvas rather than pyplot, so writing the plot neither switches the
process-wide matplotlib backend nor leaves figures in pyplot's registry for other callers to trip over.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from app.services.evaluation.metrics import RocCurve, as_scores, rates_at_threshold

_GENUINE_COLOUR = "tab:blue"
_IMPOSTOR_COLOUR = "tab:red"
_ROC_COLOUR = "tab:purple"
_CONFIGURED_COLOUR = "black"
_SUGGESTED_COLOUR = "tab:green"
_BINS = 60


def _far_floor(n_impostor: int) -> float:
    """Where FAR 0 is drawn on the log axis: 1 / n, the smallest rate the impostor pairs can show."""
    return 1.0 / n_impostor


def _thresholds(
    *, configured: float | None, suggested: float | None, suggested_label: str
) -> list[tuple[str, float, str]]:
    marks = []
    if configured is not None:
        marks.append((f"configured {configured:.4f}", configured, _CONFIGURED_COLOUR))
    if suggested is not None:
        marks.append((f"suggested ({suggested_label}) {suggested:.4f}", suggested, _SUGGESTED_COLOUR))
    return marks


def _draw_roc(
    *,
    axes: Axes,
    roc: RocCurve,
    genuine: npt.NDArray[np.float64],
    impostor: npt.NDArray[np.float64],
    marks: list[tuple[str, float, str]],
) -> None:
    axes.set_title("Genuine users accepted vs. impostors let in")
    axes.set_xlabel("False accept rate (log)")
    axes.set_ylabel("True accept rate")
    if roc.n_genuine == 0 or roc.n_impostor == 0:
        # No curve exists without both kinds of pair; say so where the curve would be rather than fail.
        missing = " or ".join(kind for kind, n in (("genuine", roc.n_genuine), ("impostor", roc.n_impostor)) if n == 0)
        axes.text(0.5, 0.5, f"No {missing} pairs:\nno ROC to draw", ha="center", va="center", transform=axes.transAxes)
        axes.set_xticks([])
        return
    floor = _far_floor(roc.n_impostor)
    axes.step(np.maximum(roc.far, floor), roc.tar, where="post", color=_ROC_COLOUR, label="ROC")
    lowest_shown = float(np.max(roc.tar[roc.far <= floor]))  # where the curve leaves the left edge
    for label, threshold, colour in marks:
        point = rates_at_threshold(genuine=genuine, impostor=impostor, threshold=threshold)
        axes.plot([max(point.far, floor)], [point.tar], "o", color=colour, label=label)
        lowest_shown = min(lowest_shown, point.tar)
    axes.set_xscale("log")
    axes.set_xlim(floor, 1.0)
    # A good model's TAR sits near 1 all along: start the axis just below where the curve leaves the left
    # edge (every point at FAR <= 1/n is drawn on it) and below the marked points, so the curve's shape
    # shows; never above 0.9, so that a curve at TAR 1 throughout still has an axis to sit on.
    axes.set_ylim(min(math.floor(lowest_shown * 10.0) / 10.0, 0.9), 1.01)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize="small", title=f"FAR 0 drawn at 1/{roc.n_impostor}")


def _draw_histograms(
    *,
    axes: Axes,
    genuine: npt.NDArray[np.float64],
    impostor: npt.NDArray[np.float64],
    marks: list[tuple[str, float, str]],
) -> None:
    axes.set_title("Similarity of same-person and different-person pairs")
    axes.set_xlabel("Cosine similarity")
    axes.set_ylabel("Share of pairs (density)")
    values = np.concatenate([genuine, impostor, [threshold for _, threshold, _ in marks if math.isfinite(threshold)]])
    # One set of bins for both, so the two shapes compare bar for bar.
    edges = np.histogram_bin_edges(values, bins=_BINS) if len(values) else np.linspace(-1.0, 1.0, _BINS + 1)
    for scores, colour, label in (
        (genuine, _GENUINE_COLOUR, "same person"),
        (impostor, _IMPOSTOR_COLOUR, "different people"),
    ):
        if len(scores):
            axes.hist(
                scores, bins=edges.tolist(), density=True, alpha=0.45, color=colour, label=f"{label} ({len(scores)})"
            )
    for label, threshold, colour in marks:
        if math.isfinite(threshold):
            axes.axvline(threshold, color=colour, linestyle="--", label=label)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", fontsize="small")
    else:
        axes.text(0.5, 0.5, "No scores to show", ha="center", va="center", transform=axes.transAxes)


def write_plot(
    *,
    path: Path | str,
    roc: RocCurve,
    genuine: npt.ArrayLike,
    impostor: npt.ArrayLike,
    configured_threshold: float | None,
    suggested_threshold: float | None,
    suggested_label: str,
) -> Path:
    """Write the ROC and the score histograms side by side to path as a PNG; returns the path.

    A threshold of None (a suggestion that was not measurable) is left out. Without genuine or impostor pairs
    the ROC panel says so instead of drawing a curve, and the histogram shows what scores there are.
    """
    genuine_scores, impostor_scores = as_scores(genuine), as_scores(impostor)
    marks = _thresholds(configured=configured_threshold, suggested=suggested_threshold, suggested_label=suggested_label)
    figure = Figure(figsize=(13, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    roc_axes, histogram_axes = figure.subplots(1, 2)
    _draw_roc(axes=roc_axes, roc=roc, genuine=genuine_scores, impostor=impostor_scores, marks=marks)
    _draw_histograms(axes=histogram_axes, genuine=genuine_scores, impostor=impostor_scores, marks=marks)
    output = Path(path)
    figure.savefig(output, format="png")
    return output
