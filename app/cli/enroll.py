"""`facerec enroll-dir`: enrol DIR/<subject>/<images> in bulk."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from app.cli.common import OK, USAGE, command, fail, run, settings
from app.composition import open_services
from app.errors import FacerecError
from app.services.access import SYSTEM
from app.services.enrollment import EnrollRequest
from app.services.quality import MultipleFacesPolicy

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def enrolment_jobs(root: Path) -> list[tuple[str, Path]] | None:
    """(subject, image) pairs from ROOT/<subject>/<image>; folders starting with . or _ are skipped."""
    if not root.is_dir():
        return None
    return sorted(
        (subject_dir.name, image)
        for subject_dir in root.iterdir()
        if subject_dir.is_dir() and not subject_dir.name.startswith((".", "_"))
        for image in subject_dir.iterdir()
        if image.suffix.lower() in IMAGE_SUFFIXES
    )


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),  # stdout is for the summary, which scripts read
        transient=True,
    )


@command
def enroll_dir(
    directory: Annotated[Path, typer.Argument(help="DIR/<subject>/<images>")],
    collection: Annotated[str, typer.Option(help="collection to enrol into")] = "default",
    on_multiple_faces: Annotated[MultipleFacesPolicy, typer.Option(help="reject, or enrol the largest face")] = (
        MultipleFacesPolicy.REJECT
    ),
    concurrency: Annotated[int, typer.Option(min=1, help="images in flight")] = 4,
) -> int:
    """Enrol DIR/<subject>/<images> in bulk: a progress bar, a timed summary, then what was rejected and why."""
    jobs = enrolment_jobs(directory)
    if jobs is None:
        raise fail(f"{directory} is not a directory", code=USAGE)
    rejected: list[tuple[Path, str, str]] = []
    outcomes: Counter[str] = Counter()

    async def go() -> float:
        async with open_services(settings(), with_engine=True) as services:
            assert services.enrollment is not None
            enrollment = services.enrollment
            semaphore = asyncio.Semaphore(concurrency)
            with progress_bar() as progress:
                task = progress.add_task("enrolling", total=len(jobs))
                started = time.perf_counter()

                async def enrol_one(*, subject: str, image: Path) -> None:
                    async with semaphore:
                        request = EnrollRequest(
                            data=await asyncio.to_thread(image.read_bytes),
                            subject=subject,
                            collection=collection,
                            on_multiple_faces=on_multiple_faces,
                        )
                        try:
                            result = await enrollment.enroll(request, principal=SYSTEM)
                            outcomes["enrolled" if result.face_created else "already enrolled"] += 1
                        except FacerecError as error:
                            rejected.append((image, error.code, error.message))
                            outcomes["rejected"] += 1
                        progress.advance(task)

                await asyncio.gather(*(enrol_one(subject=subject, image=image) for subject, image in jobs))
                return time.perf_counter() - started

    seconds = run(go())
    if jobs:
        counts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        print(f"{counts} in {seconds:.2f} s ({len(jobs) / seconds:.1f} images/s)")
    else:
        print("no images found")
    for image, code, message in sorted(rejected):
        print(f"  rejected {image}: {code} - {message}")
    return OK
