"""What `facerec enroll-dir` did with each image, as a summary for people or one JSON document."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

from app.cli.common import OK, SOME_REJECTED, UNAVAILABLE
from app.cli.enroll_jobs import EnrolmentJob
from app.errors import ERROR_CATALOGUE
from app.schemas import WarningRead


class Status(StrEnum):
    ENROLLED = "enrolled"
    ALREADY_ENROLLED = "already_enrolled"  # this image was already enrolled for the subject
    WOULD_ENROL = "would_enrol"  # --dry-run: it passes detection and the quality gate
    REJECTED = "rejected"  # refused for a reason of its own (a code of the error table)
    UNAVAILABLE = "unavailable"  # the service or database stayed unavailable through the retries
    SKIPPED = "skipped"  # not tried: the run stopped (unavailable service, bad key)


@dataclass
class Outcome:
    job: EnrolmentJob
    status: Status
    attempts: int = 0
    code: str | None = None
    message: str | None = None
    subject_id: uuid.UUID | None = None
    face_id: uuid.UUID | None = None
    warnings: list[WarningRead] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "image": str(self.job.image),
            "folder": self.job.folder,
            "subject": self.job.subject,
            "status": self.status.value,
            "attempts": self.attempts,
            "code": self.code,
            "message": self.message,
            "subject_id": None if self.subject_id is None else str(self.subject_id),
            "face_id": None if self.face_id is None else str(self.face_id),
            "warnings": [warning.model_dump(mode="json") for warning in self.warnings],
        }


@dataclass(frozen=True)
class EnrolmentReport:
    collection: str
    dry_run: bool
    outcomes: list[Outcome]
    seconds: float

    def count(self, status: Status) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status is status)

    def rejected_by_code(self) -> Counter[str]:
        return Counter(o.code or "" for o in self.outcomes if o.status is Status.REJECTED)

    def warnings_by_code(self) -> Counter[str]:
        return Counter(warning.code for outcome in self.outcomes for warning in outcome.warnings)

    @property
    def images_per_s(self) -> float:
        return len(self.outcomes) / self.seconds if self.seconds > 0 else 0.0

    def exit_code(self) -> int:
        """3 when the service stayed unavailable, else 1 when any image was refused, else 0."""
        if self.count(Status.UNAVAILABLE) or self.count(Status.SKIPPED):
            return UNAVAILABLE
        return SOME_REJECTED if self.count(Status.REJECTED) else OK

    def as_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "dry_run": self.dry_run,
            "images": len(self.outcomes),
            **{status.value: self.count(status) for status in Status},
            "warnings": sum(self.warnings_by_code().values()),
            "retries": sum(max(0, outcome.attempts - 1) for outcome in self.outcomes),
            "seconds": round(self.seconds, 3),
            "images_per_s": round(self.images_per_s, 2),
            "rejected_by_code": dict(sorted(self.rejected_by_code().items())),
            "warnings_by_code": dict(sorted(self.warnings_by_code().items())),
            "items": [outcome.as_json() for outcome in self.outcomes],
        }

    def summary(self) -> str:
        """The first line, which benchmarks/enroll.py parses: `N enrolled, M rejected in S s (R images/s)`;
        the counts before " in " add up to the images."""
        first = Status.WOULD_ENROL if self.dry_run else Status.ENROLLED
        named = {Status.WOULD_ENROL: "would be enrolled", Status.ALREADY_ENROLLED: "already enrolled"}
        parts = [f"{self.count(first)} {named.get(first, first.value)}", f"{self.count(Status.REJECTED)} rejected"]
        for status in (Status.ALREADY_ENROLLED, Status.UNAVAILABLE, Status.SKIPPED):
            if self.count(status):
                parts.append(f"{self.count(status)} {named.get(status, status.value)}")
        timing = f" in {self.seconds:.2f} s ({self.images_per_s:.1f} images/s)"
        return ", ".join(parts) + timing + ("; dry run, nothing was stored" if self.dry_run else "")


def print_report(report: EnrolmentReport, *, console: Console) -> None:
    """The summary line, a table of refusals by code, then each refused, unavailable and warned image."""
    if not report.outcomes:
        console.print("no images found")
        return
    console.print(report.summary(), markup=False, highlight=False, soft_wrap=True)
    refused = report.rejected_by_code()
    if refused:
        table = Table(title="Refused, by code", title_justify="left")
        table.add_column("code")
        table.add_column("images", justify="right")
        table.add_column("meaning")
        for code, images in sorted(refused.items(), key=lambda item: (-item[1], item[0])):
            spec = ERROR_CATALOGUE.get(code)
            table.add_row(code, str(images), spec.meaning if spec else "")
        console.print(table)
    warned = report.warnings_by_code()
    if warned:
        counts = ", ".join(f"{code} {count}" for code, count in sorted(warned.items()))
        console.print(f"{sum(warned.values())} warnings: {counts}", markup=False, highlight=False)
    lines: list[str] = []
    for outcome in sorted(report.outcomes, key=lambda outcome: outcome.job.image):
        if outcome.status in (Status.REJECTED, Status.UNAVAILABLE):
            lines.append(f"  {outcome.status.value} {outcome.job.image}: {outcome.code} - {outcome.message}")
        lines += [f"  warning {outcome.job.image}: {w.code} - {w.message}" for w in outcome.warnings]
    skipped = report.count(Status.SKIPPED)
    if skipped:
        lines.append(f"  {skipped} images were not tried: the run stopped when the service stayed unavailable")
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
