"""`facerec eval` and `facerec calibrate` as use cases: labelled photos in, the figures out.

The photos go through the service's own pipeline with the current settings (the enrolment's face
choice and quality gate included), so the figures describe what the service would answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.services.analysis import FaceAnalyser
from app.services.enrollment import enrolment_face_choice
from app.services.evaluation.dataset import Photo, distractor_photos, labelled_photos
from app.services.evaluation.metrics import min_trials_for_rate, threshold_at_far
from app.services.evaluation.report import (
    SCHEMA,
    TARGET_FARS,
    Scored,
    enrolment_report,
    identification_report,
    score,
    suggested_threshold,
    threshold_value,
    verification_report,
)
from app.services.evaluation.runner import Embedded, embed_photos
from app.services.policy import RecognitionPolicy
from app.services.quality import MultipleFacesPolicy

MAX_IMPOSTOR_PAIRS = 2_000_000


@dataclass(frozen=True)
class EvaluationRequest:
    directory: Path
    distractors: Path | None = None
    max_impostor_pairs: int = MAX_IMPOSTOR_PAIRS
    seed: int = 0
    concurrency: int = 4


@dataclass
class Evaluation:
    """The report (the JSON document), and the scores behind it for the plot."""

    report: dict[str, Any]
    scored: Scored
    embedded: list[Embedded] = field(default_factory=list)

    @property
    def suggested(self) -> tuple[float | None, str]:
        return suggested_threshold(self.report["verification"])


def photos_of(request: EvaluationRequest) -> tuple[list[Photo], list[Photo]]:
    """The labelled photos and the distractors; NotADirectoryError for a folder that is not one."""
    distractors = [] if request.distractors is None else distractor_photos(request.distractors)
    return labelled_photos(request.directory), distractors


async def evaluate(
    request: EvaluationRequest,
    *,
    analyser: FaceAnalyser,
    policy: RecognitionPolicy,
    advance: Callable[[], None] = lambda: None,
) -> Evaluation:
    photos, distractors = photos_of(request)
    choose = enrolment_face_choice(policy, on_multiple_faces=MultipleFacesPolicy.REJECT)
    started = time.perf_counter()
    embedded = await embed_photos(
        photos, analyser=analyser, choose=choose, concurrency=request.concurrency, advance=advance
    )
    extra = await embed_photos(
        distractors, analyser=analyser, choose=choose, concurrency=request.concurrency, advance=advance
    )
    seconds = time.perf_counter() - started
    scored = score(embedded, distractors=extra, max_impostor_pairs=request.max_impostor_pairs, seed=request.seed)
    images = len(photos) + len(distractors)
    report = {
        "schema": SCHEMA,
        "dataset": {
            "directory": str(request.directory),
            "distractors": None if request.distractors is None else str(request.distractors),
            "images": len(photos),
            "distractor_images": len(distractors),
        },
        "pipeline": {"model_id": analyser.model_id, **analyser.description.as_dict()},
        "configured_threshold": policy.match_threshold,
        "enrolment": enrolment_report(embedded, distractors=extra),
        "verification": {
            **verification_report(scored, configured_threshold=policy.match_threshold),
            "sample_seed": request.seed,
        },
        "identification": identification_report(scored, configured_threshold=policy.match_threshold),
        "runtime": {
            "seconds": round(seconds, 2),
            "seconds_per_100_images": round(100 * seconds / images, 2) if images else None,
        },
    }
    return Evaluation(report=report, scored=scored, embedded=[*embedded, *extra])


def compare_precisions(fp32: Evaluation, *, int8: Evaluation) -> dict[str, Any]:
    """Per-face cosine between the fp32 and int8 embeddings of the same photos, and how TAR@FAR moved."""
    pairs = [
        float(np.dot(a.embedding, b.embedding))
        for a, b in zip(fp32.embedded, int8.embedded, strict=True)
        if a.embedding is not None and b.embedding is not None
    ]
    cosines = np.asarray(pairs, dtype=np.float64)
    changes = []
    for before, after in zip(
        fp32.report["verification"]["tar_at_far"], int8.report["verification"]["tar_at_far"], strict=True
    ):
        measurable = before["measurable"] and after["measurable"]
        changes.append(
            {
                "far": before["far"],
                "measurable": measurable,
                "tar_fp32": before.get("tar"),
                "tar_int8": after.get("tar"),
                "tar_change": round(after["tar"] - before["tar"], 6) if measurable else None,
            }
        )
    return {
        "faces_compared": len(cosines),
        "cosine_fp32_int8": {
            "min": round(float(cosines.min()), 6) if len(cosines) else None,
            "p1": round(float(np.percentile(cosines, 1)), 6) if len(cosines) else None,
            "mean": round(float(cosines.mean()), 6) if len(cosines) else None,
        },
        "tar_at_far": changes,
    }


@dataclass(frozen=True)
class Calibration:
    target_far: float
    threshold: float | None  # None: too few impostor pairs to measure the target
    tar: float | None
    far_achieved: float | None
    impostor_pairs: int
    needs_impostor_pairs: int


def calibrate(evaluation: Evaluation, *, target_far: float) -> Calibration:
    """The smallest threshold whose FAR on this data is at most target_far, and the TAR there."""
    verification = evaluation.scored.verification
    point = threshold_at_far(genuine=verification.genuine, impostor=verification.impostor, target_far=target_far)

    return Calibration(
        target_far=target_far,
        threshold=None if point is None else threshold_value(point.threshold),
        tar=None if point is None else point.tar,
        far_achieved=None if point is None else point.far,
        impostor_pairs=len(verification.impostor),
        needs_impostor_pairs=min_trials_for_rate(target_far),
    )


__all__ = [
    "TARGET_FARS",
    "Calibration",
    "Evaluation",
    "EvaluationRequest",
    "calibrate",
    "compare_precisions",
    "evaluate",
]
