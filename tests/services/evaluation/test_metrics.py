"""The metrics against independent computations: scikit-learn's ROC, and brute force over every candidate
threshold (plain counting at each one, no sorting or searching shared with the code under test)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import roc_curve as sklearn_roc_curve

from app.services.evaluation.metrics import (
    OpenSetScores,
    best_accuracy_threshold,
    equal_error_rate,
    identification_at_threshold,
    min_trials_for_rate,
    rank1_hit_rate,
    rates_at_threshold,
    roc_curve,
    threshold_at_far,
    threshold_at_fpir,
)

FloatArray = npt.NDArray[np.float64]
SEEDS = [0, 1, 2, 3]


def _scores(
    *, seed: int, n_genuine: int = 300, n_impostor: int = 1_000, decimals: int | None = 2
) -> tuple[FloatArray, FloatArray]:
    """Overlapping genuine and impostor similarities; rounded, so many scores tie within and across the sets."""
    rng = np.random.default_rng(seed)
    genuine = np.clip(rng.normal(0.55, 0.15, n_genuine), -1.0, 1.0)
    impostor = np.clip(rng.normal(0.25, 0.15, n_impostor), -1.0, 1.0)
    if decimals is None:
        return genuine, impostor
    return np.round(genuine, decimals), np.round(impostor, decimals)


def _rate_at(scores: FloatArray, threshold: float) -> float:
    return int(np.count_nonzero(scores >= threshold)) / len(scores)


def _candidates(*groups: FloatArray) -> list[float]:
    """Every threshold at which a rate can change: each distinct score, the next float above it, and +inf."""
    distinct = {float(score) for group in groups for score in group}
    return sorted(distinct | {float(np.nextafter(score, np.inf)) for score in distinct} | {math.inf})


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_curve_matches_sklearn_with_tied_scores(seed: int) -> None:
    genuine, impostor = _scores(seed=seed)
    labels = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    sk_far, sk_tar, sk_thresholds = sklearn_roc_curve(
        labels, np.concatenate([genuine, impostor]), drop_intermediate=False
    )

    roc = roc_curve(genuine=genuine, impostor=impostor)

    np.testing.assert_array_equal(roc.thresholds, sk_thresholds)
    np.testing.assert_allclose(roc.far, sk_far, rtol=0, atol=1e-12)
    np.testing.assert_allclose(roc.tar, sk_tar, rtol=0, atol=1e-12)
    assert (roc.thresholds[0], roc.far[0], roc.tar[0]) == (math.inf, 0.0, 0.0)


def test_roc_curve_rates_are_nan_without_impostor_scores() -> None:
    roc = roc_curve(genuine=[0.9, 0.4], impostor=[])

    assert np.all(np.isnan(roc.far))
    np.testing.assert_array_equal(roc.tar, [0.0, 0.5, 1.0])


def test_roc_curve_rejects_nan_scores() -> None:
    with pytest.raises(ValueError, match="finite"):
        roc_curve(genuine=[0.5, math.nan], impostor=[0.1])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("target_far", [0.01, 0.02, 0.05, 0.1, 0.29])
def test_threshold_at_far_is_the_smallest_candidate_meeting_the_target(seed: int, target_far: float) -> None:
    genuine, impostor = _scores(seed=seed)
    meeting = [t for t in _candidates(genuine, impostor) if _rate_at(impostor, t) <= target_far]

    point = threshold_at_far(genuine=genuine, impostor=impostor, target_far=target_far)

    assert point is not None
    assert point.threshold == min(meeting)
    assert point.far <= target_far
    assert _rate_at(impostor, float(np.nextafter(point.threshold, -np.inf))) > target_far
    assert point.tar == max(_rate_at(genuine, t) for t in meeting)
    assert point.frr == 1.0 - point.tar


def test_threshold_at_far_goes_above_impostor_scores_tied_at_the_allowed_count() -> None:
    # 1,000 impostors at FAR 1% allow 10 false accepts, but the 10th and 11th highest tie at 0.8.
    impostor = np.array([0.9] * 9 + [0.8] * 3 + [0.1] * 988)

    point = threshold_at_far(genuine=[0.85, 0.8, 0.5], impostor=impostor, target_far=0.01)

    assert point is not None
    assert point.threshold == np.nextafter(0.8, np.inf)
    assert (point.false_accepts, point.far) == (9, 0.009)
    assert point.true_accepts == 1


def test_threshold_at_far_allows_the_full_count_when_target_times_n_rounds_down() -> None:
    # 0.29 * 100 is 28.999999999999996 in floats, yet 29 of 100 is a FAR of exactly 0.29.
    impostor = np.arange(100) / 100.0

    point = threshold_at_far(genuine=[0.5], impostor=impostor, target_far=0.29)

    assert point is not None
    assert (point.false_accepts, point.far) == (29, 0.29)


def test_threshold_at_far_is_none_below_ten_over_target_impostors() -> None:
    rng = np.random.default_rng(0)
    impostor = rng.normal(0.0, 0.1, 100_000)

    too_few = threshold_at_far(genuine=[0.9], impostor=impostor[:99_999], target_far=1e-4)
    enough = threshold_at_far(genuine=[0.9], impostor=impostor, target_far=1e-4)

    assert too_few is None
    assert enough is not None
    assert enough.false_accepts <= 10


@pytest.mark.parametrize(
    ("target_rate", "trials"), [(1e-4, 100_000), (1e-5, 1_000_000), (1e-3, 10_000), (0.003, 3_334)]
)
def test_min_trials_for_rate_is_ten_over_the_rate_rounded_up(target_rate: float, trials: int) -> None:
    assert min_trials_for_rate(target_rate) == trials


def test_rates_at_threshold_accept_a_score_equal_to_the_threshold() -> None:
    point = rates_at_threshold(genuine=[0.5, 0.4], impostor=[0.5, 0.1, 0.2, 0.3], threshold=0.5)

    assert (point.tar, point.frr, point.far) == (0.5, 0.5, 0.25)
    assert (point.true_accepts, point.false_accepts, point.n_genuine, point.n_impostor) == (1, 1, 2, 4)


@pytest.mark.parametrize("seed", SEEDS)
def test_equal_error_rate_matches_a_fine_grid_search(seed: int) -> None:
    genuine, impostor = _scores(seed=seed, n_genuine=400, n_impostor=2_000, decimals=None)
    grid = np.linspace(-1.0, 1.0, 20_001)
    far = np.array([_rate_at(impostor, t) for t in grid])
    frr = 1.0 - np.array([_rate_at(genuine, t) for t in grid])
    closest = int(np.argmin(np.abs(far - frr)))
    # Both rates move in steps of one score (1/n) however fine the grid: the crossing found by interpolation
    # and the grid's closest point can be up to one step of each apart.
    tolerance = 1.0 / len(genuine) + 1.0 / len(impostor)

    eer, threshold = equal_error_rate(roc_curve(genuine=genuine, impostor=impostor))

    assert abs(eer - (far[closest] + frr[closest]) / 2.0) <= tolerance
    assert abs(_rate_at(impostor, threshold) - eer) <= tolerance
    assert abs(1.0 - _rate_at(genuine, threshold) - eer) <= tolerance


def test_equal_error_rate_interpolates_between_the_bracketing_roc_points() -> None:
    # FAR - FRR is -1/6 at threshold 0.85 and +1/6 at 0.8: the crossing is half-way along that segment.
    roc = roc_curve(genuine=[0.9, 0.8, 0.3], impostor=[0.85, 0.2])

    eer, threshold = equal_error_rate(roc)

    assert eer == pytest.approx(0.5, abs=1e-12)
    assert threshold == pytest.approx(0.825, abs=1e-12)


def test_equal_error_rate_is_the_roc_point_where_far_equals_frr_exactly() -> None:
    eer, threshold = equal_error_rate(roc_curve(genuine=[0.9, 0.6], impostor=[0.7, 0.2]))

    assert (eer, threshold) == (0.5, 0.7)


def test_equal_error_rate_is_nan_without_genuine_scores() -> None:
    eer, threshold = equal_error_rate(roc_curve(genuine=[], impostor=[0.1, 0.2]))

    assert math.isnan(eer)
    assert math.isnan(threshold)


@pytest.mark.parametrize("seed", SEEDS)
def test_best_accuracy_threshold_matches_brute_force(seed: int) -> None:
    genuine, impostor = _scores(seed=seed, n_genuine=200, n_impostor=600)
    total = len(genuine) + len(impostor)
    candidates = sorted({float(s) for s in np.concatenate([genuine, impostor])} | {math.inf}, reverse=True)
    correct = [int(np.count_nonzero(genuine >= t)) + int(np.count_nonzero(impostor < t)) for t in candidates]
    best = max(correct)

    threshold, accuracy = best_accuracy_threshold(genuine=genuine, impostor=impostor)

    assert threshold == candidates[correct.index(best)]  # the first, highest, of any tied best
    assert accuracy == best / total


def test_best_accuracy_threshold_prefers_the_stricter_of_tied_thresholds() -> None:
    # 0.9 and 0.4 both get 3 of 4 pairs right.
    threshold, accuracy = best_accuracy_threshold(genuine=[0.9, 0.4], impostor=[0.6, 0.3])

    assert (threshold, accuracy) == (0.9, 0.75)


def _open_set(seed: int) -> OpenSetScores:
    rng = np.random.default_rng(seed)
    n_mated, n_nonmated = 300, 500
    mate_score = np.round(rng.normal(0.6, 0.15, n_mated), 2)
    best_other = np.round(rng.normal(0.35, 0.15, n_mated), 2)
    return OpenSetScores(
        mated_rank1_score=np.maximum(mate_score, best_other),
        mated_rank1_is_mate=mate_score > best_other,
        mated_mate_score=mate_score,
        nonmated_top_score=np.round(rng.normal(0.35, 0.15, n_nonmated), 2),
    )


def _fnir_by_loop(scores: OpenSetScores, threshold: float) -> float:
    found = sum(
        1
        for score, is_mate in zip(scores.mated_rank1_score, scores.mated_rank1_is_mate, strict=True)
        if is_mate and score >= threshold
    )
    return 1.0 - found / len(scores.mated_rank1_score)


@pytest.mark.parametrize("seed", SEEDS)
def test_identification_at_threshold_matches_per_probe_counting(seed: int) -> None:
    scores = _open_set(seed)

    points = {t: identification_at_threshold(scores=scores, threshold=t) for t in (0.2, 0.35, 0.5, 0.65)}

    for threshold, point in points.items():
        assert point.fnir == pytest.approx(_fnir_by_loop(scores, threshold), abs=1e-12)
        assert point.fpir == _rate_at(scores.nonmated_top_score, threshold)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("target_fpir", [0.02, 0.05, 0.1])
def test_threshold_at_fpir_is_the_smallest_candidate_meeting_the_target(seed: int, target_fpir: float) -> None:
    scores = _open_set(seed)
    nonmated = scores.nonmated_top_score
    meeting = [t for t in _candidates(scores.mated_rank1_score, nonmated) if _rate_at(nonmated, t) <= target_fpir]

    point = threshold_at_fpir(scores=scores, target_fpir=target_fpir)

    assert point is not None
    assert point.threshold == min(meeting)
    assert point.fpir <= target_fpir
    assert _rate_at(nonmated, float(np.nextafter(point.threshold, -np.inf))) > target_fpir
    assert point.fnir == pytest.approx(min(_fnir_by_loop(scores, t) for t in meeting), abs=1e-12)


def test_threshold_at_fpir_is_none_below_ten_over_target_nonmated_probes() -> None:
    scores = _open_set(0)  # 500 non-mated probes: FPIR 0.02 is measurable, 0.01 is not

    assert threshold_at_fpir(scores=scores, target_fpir=0.01) is None
    assert threshold_at_fpir(scores=scores, target_fpir=0.02) is not None


def test_rank1_hit_rate_counts_mates_at_rank_one_whatever_their_score() -> None:
    scores = OpenSetScores(
        mated_rank1_score=np.array([0.1, 0.9, 0.5, 0.3]),
        mated_rank1_is_mate=np.array([True, True, False, True]),
        mated_mate_score=np.array([0.1, 0.9, 0.2, 0.3]),
        nonmated_top_score=np.array([0.4]),
    )

    assert rank1_hit_rate(scores) == 0.75
    assert identification_at_threshold(scores=scores, threshold=0.5).fnir == 0.75


def test_identification_rates_are_nan_without_probes() -> None:
    empty = np.empty(0)
    scores = OpenSetScores(empty, np.empty(0, dtype=bool), empty, empty)

    point = identification_at_threshold(scores=scores, threshold=0.5)

    assert math.isnan(rank1_hit_rate(scores))
    assert math.isnan(point.fnir)
    assert math.isnan(point.fpir)
    assert threshold_at_fpir(scores=scores, target_fpir=0.1) is None
