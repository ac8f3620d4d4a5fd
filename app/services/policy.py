"""Recognition policy: which threshold decides a match, and what enrolment does about conflicts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.services.quality import QualityLimits

DEFAULT_COLLECTION = "default"


class ThresholdSource(StrEnum):
    """Where the threshold of an answer came from."""

    REQUEST = "request"
    COLLECTION = "collection"
    DEFAULT = "default"


@dataclass(frozen=True)
class Threshold:
    value: float
    source: ThresholdSource


class ConflictPolicy(StrEnum):
    """What enrolment does when the face matches another subject of the collection."""

    REJECT = "reject"
    ALLOW = "allow"


class LowSimilarityPolicy(StrEnum):
    """What enrolment does when the face is unlike the subject's other faces."""

    WARN = "warn"
    REJECT = "reject"


@dataclass(frozen=True)
class RecognitionPolicy:
    match_threshold: float
    quality: QualityLimits
    bystander_max_width_ratio: float
    enroll_conflict_check: bool
    hnsw_ef_search: int

    def threshold(self, *, requested: float | None, collection: float | None) -> Threshold:
        """The request's threshold, else the collection's, else the service's."""
        if requested is not None:
            return Threshold(requested, ThresholdSource.REQUEST)
        if collection is not None:
            return Threshold(collection, ThresholdSource.COLLECTION)
        return Threshold(self.match_threshold, ThresholdSource.DEFAULT)
