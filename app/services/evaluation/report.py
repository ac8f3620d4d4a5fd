"""An evaluation's figures, from the embedded photos: what `facerec eval` prints and writes as JSON.

The JSON document's schema is README.md's "How accurate is it?"; its `schema` field names the version.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.engine.faces import no_embeddings
from app.services.evaluation.metrics import (
    IdentificationPoint,
    OperatingPoint,
    RocCurve,
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
from app.services.evaluation.runner import Embedded
from app.services.evaluation.scores import (
    IdentificationScores,
    VerificationScores,
    identification_scores,
    verification_scores,
)

SCHEMA = "facerec-eval/1"
TARGET_FARS = (1e-2, 1e-3, 1e-4)
TARGET_FPIRS = (1e-2, 1e-3)
ROC_POINTS = 500  # the ROC in the JSON is thinned to about this many points
HISTOGRAM_BINS = 50


@dataclass(frozen=True)
class Scored:
    """The score arrays behind a report (for the plot), and the ROC."""

    verification: VerificationScores
    identification: IdentificationScores
    roc: RocCurve


def score(
    embedded: Sequence[Embedded], *, distractors: Sequence[Embedded], max_impostor_pairs: int, seed: int
) -> Scored:
    usable = [(item, item.embedding) for item in embedded if item.embedding is not None]
    vectors = np.stack([vector for _, vector in usable]) if usable else no_embeddings()
    labels = [item.photo.subject for item, _ in usable]
    extra = [item.embedding for item in distractors if item.embedding is not None]
    verification = verification_scores(
        embeddings=vectors, labels=labels, max_impostor_pairs=max_impostor_pairs, seed=seed
    )
    identification = identification_scores(
        embeddings=vectors,
        labels=labels,
        order_keys=[item.photo.path.name for item, _ in usable],
        extra_nonmated=np.stack(extra) if extra else None,
    )
    return Scored(verification, identification, roc_curve(genuine=verification.genuine, impostor=verification.impostor))


def _number(value: float) -> float | None:
    """JSON has no nan or infinity: those become null."""
    return None if not math.isfinite(value) else round(float(value), 6)


def threshold_value(value: float) -> float | None:
    """A threshold to six decimals, rounded up: rounding down could put it back on an impostor's score."""
    return None if not math.isfinite(value) else math.ceil(float(value) * 1e6) / 1e6


def _operating(point: OperatingPoint | None, *, target: float, n_impostor: int) -> dict[str, Any]:
    if point is None:
        return {
            "far": target,
            "measurable": False,
            "needs_impostor_pairs": min_trials_for_rate(target),
            "have": n_impostor,
        }
    return {
        "far": target,
        "measurable": True,
        "threshold": threshold_value(point.threshold),
        "tar": _number(point.tar),
        "far_achieved": _number(point.far),
    }


def _identifying(point: IdentificationPoint | None, *, target: float, n_nonmated: int) -> dict[str, Any]:
    if point is None:
        return {
            "fpir": target,
            "measurable": False,
            "needs_nonmated_probes": min_trials_for_rate(target),
            "have": n_nonmated,
        }
    return {
        "fpir": target,
        "measurable": True,
        "threshold": threshold_value(point.threshold),
        "fnir": _number(point.fnir),
        "fpir_achieved": _number(point.fpir),
    }


def _thinned_roc(roc: RocCurve) -> dict[str, list[float | None]]:
    step = max(1, len(roc.thresholds) // ROC_POINTS)
    rows = sorted({*range(0, len(roc.thresholds), step), len(roc.thresholds) - 1})
    return {
        "thresholds": [_number(roc.thresholds[i]) for i in rows],
        "far": [_number(roc.far[i]) for i in rows],
        "tar": [_number(roc.tar[i]) for i in rows],
    }


def _histogram(scores: np.ndarray) -> dict[str, list[float]]:
    counts, edges = np.histogram(scores, bins=HISTOGRAM_BINS, range=(-1.0, 1.0))
    return {"edges": [round(float(edge), 4) for edge in edges], "counts": [int(count) for count in counts]}


def verification_report(scored: Scored, *, configured_threshold: float) -> dict[str, Any]:
    scores = scored.verification
    genuine, impostor = scores.genuine, scores.impostor
    eer, eer_threshold = equal_error_rate(scored.roc)
    best_threshold, accuracy = best_accuracy_threshold(genuine=genuine, impostor=impostor)
    configured = rates_at_threshold(genuine=genuine, impostor=impostor, threshold=configured_threshold)
    return {
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "impostor_pairs_total": scores.impostor_total,
        "impostor_sampled": scores.impostor_sampled,
        "eer": _number(eer),
        "eer_threshold": threshold_value(eer_threshold),
        "tar_at_far": [
            _operating(
                threshold_at_far(genuine=genuine, impostor=impostor, target_far=target),
                target=target,
                n_impostor=len(impostor),
            )
            for target in TARGET_FARS
        ],
        "best_accuracy": {"threshold": threshold_value(best_threshold), "accuracy": _number(accuracy)},
        "at_configured_threshold": {
            "threshold": configured_threshold,
            "far": _number(configured.far),
            "frr": _number(configured.frr),
        },
        "roc": _thinned_roc(scored.roc),
        "genuine_histogram": _histogram(genuine),
        "impostor_histogram": _histogram(impostor),
    }


def identification_report(scored: Scored, *, configured_threshold: float) -> dict[str, Any]:
    found = scored.identification
    scores = found.open_set
    configured = identification_at_threshold(scores=scores, threshold=configured_threshold)
    return {
        "gallery_size": found.gallery_size,
        "mated_probes": found.n_mated,
        "nonmated_probes": found.n_nonmated,
        "distractors": found.n_distractors,
        "rank1_hit_rate": _number(rank1_hit_rate(scores)),
        "fnir_at_fpir": [
            _identifying(
                threshold_at_fpir(scores=scores, target_fpir=target), target=target, n_nonmated=found.n_nonmated
            )
            for target in TARGET_FPIRS
        ],
        "at_configured_threshold": {
            "threshold": configured_threshold,
            "fnir": _number(configured.fnir),
            "fpir": _number(configured.fpir),
        },
    }


def enrolment_report(embedded: Sequence[Embedded], *, distractors: Sequence[Embedded]) -> dict[str, Any]:
    everything = [*embedded, *distractors]
    failed = [item for item in everything if item.embedding is None]
    return {
        "processed": len(everything),
        "usable": len(everything) - len(failed),
        "subjects": len({item.photo.subject for item in embedded}),
        "failures": dict(sorted(Counter(item.failure or "" for item in failed).items())),
        "failed_images": [
            {"image": item.photo.name, "code": item.failure, "message": item.message}
            for item in sorted(failed, key=lambda item: item.photo.name)
        ],
    }


def suggested_threshold(verification: dict[str, Any]) -> tuple[float | None, str]:
    """The threshold a user is pointed to: at the strictest measurable target FAR, else the EER's."""
    for point in reversed(verification["tar_at_far"]):
        if point["measurable"]:
            return point["threshold"], f"FAR {point['far']:g}"
    return verification["eer_threshold"], "EER"
