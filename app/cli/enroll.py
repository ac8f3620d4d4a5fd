"""`facerec enroll-dir`: enrol DIR/<subject>/<images> in bulk, here or through a service's API."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from app.cli.backend import Backend, connect
from app.cli.common import (
    SOME_REJECTED,
    UNAVAILABLE,
    USAGE,
    JsonFlag,
    KeyOption,
    UrlOption,
    UsageError,
    cli_options,
    command,
    exit_code_of,
    print_json,
    run,
    settings,
)
from app.cli.enroll_jobs import EnrolmentJob, JobsError, enrolment_jobs
from app.cli.enroll_report import EnrolmentReport, Outcome, Status, print_report
from app.cli.remote import RemoteError
from app.cli.retry import Attempts, RetryPolicy, retrying
from app.errors import FacerecError
from app.services.enrollment_records import EnrollRequest
from app.services.policy import DEFAULT_COLLECTION, ConflictPolicy, LowSimilarityPolicy
from app.services.quality import MultipleFacesPolicy

if TYPE_CHECKING:
    from app.cli.local import LocalBackend

logger = logging.getLogger("facerec.enroll-dir")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),  # stdout is for the summary, which scripts read
        transient=True,
    )


@dataclass(frozen=True)
class EnrolOptions:
    collection: str
    on_multiple_faces: MultipleFacesPolicy
    on_conflict: ConflictPolicy
    on_low_similarity: LowSimilarityPolicy
    concurrency: int
    retry: RetryPolicy
    dry_run: bool
    remote: bool


class _Run:
    """One enrol-dir run: the images in flight, and whether it has had to stop."""

    def __init__(self, backend: Backend, *, options: EnrolOptions, progress: Progress, total: int) -> None:
        self._backend = backend
        self._options = options
        self._progress = progress
        self._task = progress.add_task("checking" if options.dry_run else "enrolling", total=total)
        self._slots = asyncio.Semaphore(options.concurrency)
        # What stopped the run: a bad key or scope (the same for every image), or a service that stayed unavailable.
        self.stopped_by: FacerecError | RemoteError | None = None

    async def one(self, job: EnrolmentJob) -> Outcome:
        async with self._slots:
            if self.stopped_by is not None:
                return Outcome(job=job, status=Status.SKIPPED)
            try:
                return await self._attempt(job)
            finally:
                self._progress.advance(self._task)

    async def _attempt(self, job: EnrolmentJob) -> Outcome:
        try:
            data = await asyncio.to_thread(job.image.read_bytes)
        except OSError as error:
            return Outcome(job=job, status=Status.REJECTED, code="UNREADABLE_FILE", message=str(error))
        tried = Attempts()

        def log_retry(error: Exception, *, wait_s: float) -> None:
            code = getattr(error, "code", type(error).__name__)
            logger.info("%s: %s, retry %d in %.1f s", job.image, code, tried.count, wait_s)

        try:
            if self._options.dry_run:
                local = cast("LocalBackend", self._backend)  # a dry run always runs here (_enrol_all)
                choice = self._options.on_multiple_faces
                await retrying(
                    lambda: local.would_enroll(data, on_multiple_faces=choice),
                    policy=self._options.retry,
                    attempts=tried,
                    on_retry=log_retry,
                )
                return Outcome(job=job, status=Status.WOULD_ENROL, attempts=tried.count)
            request = self._request(job, data=data)
            answer = await retrying(
                lambda: self._backend.enroll(request), policy=self._options.retry, attempts=tried, on_retry=log_retry
            )
        except (FacerecError, RemoteError) as error:
            exit_code = exit_code_of(error)
            if exit_code in (USAGE, UNAVAILABLE):
                self.stopped_by = self.stopped_by or error
            status = Status.REJECTED if exit_code == SOME_REJECTED else Status.UNAVAILABLE
            return Outcome(job=job, status=status, attempts=tried.count, code=error.code, message=error.message)
        return Outcome(
            job=job,
            status=Status.ENROLLED if answer.created else Status.ALREADY_ENROLLED,
            attempts=tried.count,
            subject_id=answer.subject_id,
            face_id=answer.face_id,
            warnings=answer.warnings,
        )

    def _request(self, job: EnrolmentJob, *, data: bytes) -> EnrollRequest:
        return EnrollRequest(
            data=data,
            subject=job.subject,
            collection=self._options.collection,
            on_multiple_faces=self._options.on_multiple_faces,
            on_conflict=self._options.on_conflict,
            on_low_similarity=self._options.on_low_similarity,
            # Over HTTP an answer can be lost after the enrolment committed: the key makes the retry a replay.
            idempotency_key=f"facerec-cli-{uuid.uuid4()}" if self._options.remote else None,
        )


async def _enrol_all(
    jobs: list[EnrolmentJob], *, options: EnrolOptions, url: str | None, key: str | None
) -> EnrolmentReport:
    config = settings()
    db_wait_s = cli_options().db_wait_s
    target: AbstractAsyncContextManager[Backend]
    if options.dry_run:
        from app.cli.local import open_local  # the model here, and no database

        target = open_local(config, database=False, model=True, db_wait_s=db_wait_s)
    else:
        target = connect(config, url=url, key=key, model=True, db_wait_s=db_wait_s)
    async with target as backend:
        with progress_bar() as progress:
            batch = _Run(backend, options=options, progress=progress, total=len(jobs))
            started = time.perf_counter()
            outcomes = await asyncio.gather(*(batch.one(job) for job in jobs))
            seconds = time.perf_counter() - started
    if batch.stopped_by is not None and exit_code_of(batch.stopped_by) == USAGE:
        raise batch.stopped_by
    return EnrolmentReport(collection=options.collection, dry_run=options.dry_run, outcomes=outcomes, seconds=seconds)


@command
def enroll_dir(
    directory: Annotated[Path, typer.Argument(help="DIR/<subject>/<images>; DIR/names.csv (folder,name) names them")],
    collection: Annotated[str, typer.Option(help="collection to enrol into")] = DEFAULT_COLLECTION,
    on_multiple_faces: Annotated[MultipleFacesPolicy, typer.Option(help="reject, or enrol the largest face")] = (
        MultipleFacesPolicy.REJECT
    ),
    on_conflict: Annotated[
        ConflictPolicy, typer.Option(help="reject (FACE_MATCHES_OTHER_SUBJECT) or allow a face like another subject's")
    ] = ConflictPolicy.REJECT,
    on_low_similarity: Annotated[
        LowSimilarityPolicy, typer.Option(help="warn, or reject, a face unlike the subject's other faces")
    ] = LowSimilarityPolicy.WARN,
    concurrency: Annotated[int, typer.Option(min=1, help="images in flight")] = 4,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="detection and quality gate only, on this machine; stores nothing")
    ] = False,
    attempts: Annotated[int, typer.Option(min=1, help="tries per image when the service is busy or unavailable")] = 5,
    retry_for: Annotated[float, typer.Option(min=0, help="seconds after an image's first try to stop retrying")] = 60.0,
    url: UrlOption = None,
    key: KeyOption = None,
    as_json: JsonFlag = False,
) -> int:
    """Enrol DIR/<subject>/<images> in bulk: a progress bar, a timed summary, a table of refusals by code.

    Exit 0 when every image was enrolled, 1 when some were refused, 3 when the service stayed unavailable.
    """
    try:
        jobs = enrolment_jobs(directory)
    except JobsError as error:
        raise UsageError(f"facerec enroll-dir: {error}") from None
    if dry_run and url:
        print(
            "facerec enroll-dir: --dry-run runs the model here and uses no database; --url is ignored", file=sys.stderr
        )
    options = EnrolOptions(
        collection=collection,
        on_multiple_faces=on_multiple_faces,
        on_conflict=on_conflict,
        on_low_similarity=on_low_similarity,
        concurrency=concurrency,
        retry=RetryPolicy(attempts=attempts, budget_s=retry_for),
        dry_run=dry_run,
        remote=bool(url) and not dry_run,
    )
    report = run(_enrol_all(jobs, options=options, url=url, key=key))
    if as_json:
        print_json(report.as_json())
    else:
        print_report(report, console=Console(soft_wrap=True))
    return report.exit_code()
