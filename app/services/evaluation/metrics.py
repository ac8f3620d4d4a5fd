"""Verification (1:1) and open-set identification (1:N) rates from similarity scores.

Decision rule, as in the service: a comparison is a match when similarity >= threshold.

- FAR (false accept rate): fraction of impostor (different-subject) scores >= threshold.
- TAR (true accept rate): fraction of genuine (same-subject) scores >= threshold.
- FRR (false reject rate): 1 - TAR, the fraction of genuine scores < threshold.
- EER (equal error rate): the rate where FAR and FRR cross on the ROC.
- Rank-1 hit rate: fraction of mated probes whose top gallery entry is their mate, at any score.
- FNIR (false negative identification rate): fraction of mated probes whose mate is not returned at rank 1
  with score >= threshold.
- FPIR (false positive identification rate): fraction of non-mated probes whose top score >= threshold.

Empty score arrays are allowed: a rate over zero trials is nan, never an exception, so an evaluation of a
data set without (say) any genuine pair still reports what it can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MIN_EXPECTED_ERRORS = 10
"""A target rate is measurable only when at least this many errors are expected at it: below that, the rate
measured from a handful of errors (or none) says little about the true rate."""


def min_trials_for_rate(target_rate: float) -> int:
    """The fewest trials (impostor pairs, non-mated probes) for which a rate of target_rate is measurable."""
    if not 0.0 < target_rate < 1.0:
        raise ValueError(f"target rate must be in (0, 1), got {target_rate}")
    needed = MIN_EXPECTED_ERRORS / target_rate
    # 10 / 1e-5 is 999999.9999999999 in floats: snap to the integer the decimal rate means.
    nearest = round(needed)
    return int(nearest) if math.isclose(needed, nearest, rel_tol=1e-9) else math.ceil(needed)


def is_measurable(*, n_trials: int, target_rate: float) -> bool:
    """Whether n_trials are enough to measure target_rate (see MIN_EXPECTED_ERRORS)."""
    return n_trials >= min_trials_for_rate(target_rate)


@dataclass(frozen=True)
class RocCurve:
    """FAR and TAR at every distinct score, thresholds descending, led by (FAR 0, TAR 0) at +inf."""

    thresholds: FloatArray
    far: FloatArray
    tar: FloatArray
    n_genuine: int
    n_impostor: int


@dataclass(frozen=True)
class OperatingPoint:
    """The verification rates at one threshold, and the counts they come from."""

    threshold: float
    far: float
    tar: float
    false_accepts: int
    true_accepts: int
    n_genuine: int
    n_impostor: int

    @property
    def frr(self) -> float:
        """False reject rate: 1 - TAR."""
        return 1.0 - self.tar


@dataclass(frozen=True)
class OpenSetScores:
    """What an open-set search returned for each probe.

    mated_rank1_score: top similarity of each mated probe (its subject is in the gallery).
    mated_rank1_is_mate: whether that top entry is the probe's own subject.
    mated_mate_score: the probe's similarity to its own subject's gallery entry.
    nonmated_top_score: top similarity of each non-mated probe (its subject is not in the gallery).
    """

    mated_rank1_score: FloatArray
    mated_rank1_is_mate: BoolArray
    mated_mate_score: FloatArray
    nonmated_top_score: FloatArray

    def __post_init__(self) -> None:
        n_mated = len(self.mated_rank1_score)
        if len(self.mated_rank1_is_mate) != n_mated or len(self.mated_mate_score) != n_mated:
            raise ValueError("the three mated-probe arrays must have one entry per mated probe")


@dataclass(frozen=True)
class IdentificationPoint:
    """The open-set identification rates at one threshold, and the counts they come from."""

    threshold: float
    fnir: float
    fpir: float
    mated_misses: int
    false_positives: int
    n_mated: int
    n_nonmated: int


def as_scores(values: npt.ArrayLike) -> FloatArray:
    """values as a 1-D float64 array; raises ValueError on nan or inf, which no similarity can be."""
    scores = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite")
    return scores


def _rate(*, count: int, total: int) -> float:
    return count / total if total else math.nan


def _count_at_or_above(*, sorted_ascending: FloatArray, thresholds: FloatArray) -> npt.NDArray[np.int64]:
    """How many of the sorted scores are >= each threshold."""
    below = np.searchsorted(sorted_ascending, thresholds, side="left")
    return (len(sorted_ascending) - below).astype(np.int64)


def roc_curve(*, genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> RocCurve:
    """The ROC at every distinct score (sklearn's roc_curve with drop_intermediate=False)."""
    genuine_sorted = np.sort(as_scores(genuine))
    impostor_sorted = np.sort(as_scores(impostor))
    distinct = np.unique(np.concatenate([genuine_sorted, impostor_sorted]))[::-1]
    thresholds = np.concatenate([[np.inf], distinct])
    n_gen, n_imp = len(genuine_sorted), len(impostor_sorted)
    true_accepts = _count_at_or_above(sorted_ascending=genuine_sorted, thresholds=thresholds)
    false_accepts = _count_at_or_above(sorted_ascending=impostor_sorted, thresholds=thresholds)
    no_trials = np.full(len(thresholds), np.nan)
    return RocCurve(
        thresholds=thresholds,
        far=false_accepts / n_imp if n_imp else no_trials,
        tar=true_accepts / n_gen if n_gen else no_trials.copy(),
        n_genuine=n_gen,
        n_impostor=n_imp,
    )


def rates_at_threshold(*, genuine: npt.ArrayLike, impostor: npt.ArrayLike, threshold: float) -> OperatingPoint:
    """FAR, TAR (and FRR) at a configured threshold."""
    genuine_scores, impostor_scores = as_scores(genuine), as_scores(impostor)
    true_accepts = int(np.count_nonzero(genuine_scores >= threshold))
    false_accepts = int(np.count_nonzero(impostor_scores >= threshold))
    return OperatingPoint(
        threshold=float(threshold),
        far=_rate(count=false_accepts, total=len(impostor_scores)),
        tar=_rate(count=true_accepts, total=len(genuine_scores)),
        false_accepts=false_accepts,
        true_accepts=true_accepts,
        n_genuine=len(genuine_scores),
        n_impostor=len(impostor_scores),
    )


def smallest_threshold_at_rate(*, negatives: FloatArray, target_rate: float) -> float | None:
    """The smallest threshold at which the fraction of negatives >= threshold is <= target_rate.

    With negatives sorted descending s_1 >= s_2 >= ... and k the most errors the target allows, the answer is
    the next float above s_(k+1): every threshold at or below s_(k+1) accepts at least k + 1 negatives, and the
    next float up accepts at most k (fewer when s_k ties s_(k+1): both are then rejected). None when the target
    is not measurable with this many negatives (see MIN_EXPECTED_ERRORS).
    """
    n = len(negatives)
    if not is_measurable(n_trials=n, target_rate=target_rate):
        return None
    # floor(target * n) in floats can land one below (0.29 * 100 is 28.99...): settle k on the same
    # count / n <= target comparison the rate itself is judged by.
    allowed = math.floor(target_rate * n)
    while (allowed + 1) / n <= target_rate:
        allowed += 1
    while allowed > 0 and allowed / n > target_rate:
        allowed -= 1
    descending = np.sort(negatives)[::-1]
    return float(np.nextafter(descending[allowed], np.inf))


def threshold_at_far(*, genuine: npt.ArrayLike, impostor: npt.ArrayLike, target_far: float) -> OperatingPoint | None:
    """The smallest threshold with FAR <= target_far (the highest TAR under it); None when not measurable."""
    threshold = smallest_threshold_at_rate(negatives=as_scores(impostor), target_rate=target_far)
    if threshold is None:
        return None
    return rates_at_threshold(genuine=genuine, impostor=impostor, threshold=threshold)


def equal_error_rate(roc: RocCurve) -> tuple[float, float]:
    """(EER, threshold) where FAR and FRR cross; (nan, nan) when either score set is empty.

    FAR rises and FRR falls along the ROC, so FAR - FRR goes from -1 to +1. Between the two consecutive ROC
    points that bracket its sign change the rates are interpolated linearly (the straight ROC segment between
    them), and so is the threshold; when the bracketing point above is the +inf lead point, the threshold is
    the finite one below it.
    """
    if roc.n_genuine == 0 or roc.n_impostor == 0:
        return math.nan, math.nan
    gap = roc.far - (1.0 - roc.tar)
    upper = int(np.argmax(gap >= 0.0))  # the lead point has gap -1 and the last +1, so this always brackets
    lower = upper - 1
    if gap[upper] == 0.0:
        return float(roc.far[upper]), float(roc.thresholds[upper])
    weight = -gap[lower] / (gap[upper] - gap[lower])
    eer = roc.far[lower] + weight * (roc.far[upper] - roc.far[lower])
    if math.isinf(roc.thresholds[lower]):
        return float(eer), float(roc.thresholds[upper])
    threshold = roc.thresholds[lower] + weight * (roc.thresholds[upper] - roc.thresholds[lower])
    return float(eer), float(threshold)


def best_accuracy_threshold(*, genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> tuple[float, float]:
    """(threshold, accuracy) maximising (true accepts + true rejects) / all pairs.

    Candidates are every distinct score and +inf; ties go to the higher (stricter) threshold. (inf, nan) when
    there are no scores at all.
    """
    genuine_sorted, impostor_sorted = np.sort(as_scores(genuine)), np.sort(as_scores(impostor))
    total = len(genuine_sorted) + len(impostor_sorted)
    if total == 0:
        return math.inf, math.nan
    candidates = np.concatenate([[np.inf], np.unique(np.concatenate([genuine_sorted, impostor_sorted]))[::-1]])
    true_accepts = _count_at_or_above(sorted_ascending=genuine_sorted, thresholds=candidates)
    true_rejects = len(impostor_sorted) - _count_at_or_above(sorted_ascending=impostor_sorted, thresholds=candidates)
    # argmax over integer counts: exact, and its first hit is the highest threshold among ties.
    best = int(np.argmax(true_accepts + true_rejects))
    return float(candidates[best]), float((true_accepts[best] + true_rejects[best]) / total)


def rank1_hit_rate(scores: OpenSetScores) -> float:
    """Fraction of mated probes whose rank-1 entry is their mate, at any score; nan without mated probes."""
    return _rate(count=int(np.count_nonzero(scores.mated_rank1_is_mate)), total=len(scores.mated_rank1_is_mate))


def identification_at_threshold(*, scores: OpenSetScores, threshold: float) -> IdentificationPoint:
    """FNIR and FPIR at a configured threshold."""
    mated_hits = np.asarray(scores.mated_rank1_is_mate, dtype=bool) & (as_scores(scores.mated_rank1_score) >= threshold)
    nonmated = as_scores(scores.nonmated_top_score)
    n_mated = len(mated_hits)
    mated_misses = n_mated - int(np.count_nonzero(mated_hits))
    false_positives = int(np.count_nonzero(nonmated >= threshold))
    return IdentificationPoint(
        threshold=float(threshold),
        fnir=_rate(count=mated_misses, total=n_mated),
        fpir=_rate(count=false_positives, total=len(nonmated)),
        mated_misses=mated_misses,
        false_positives=false_positives,
        n_mated=n_mated,
        n_nonmated=len(nonmated),
    )


def threshold_at_fpir(*, scores: OpenSetScores, target_fpir: float) -> IdentificationPoint | None:
    """The smallest threshold with FPIR <= target_fpir (the lowest FNIR under it); None when not measurable."""
    threshold = smallest_threshold_at_rate(negatives=as_scores(scores.nonmated_top_score), target_rate=target_fpir)
    if threshold is None:
        return None
    return identification_at_threshold(scores=scores, threshold=threshold)
