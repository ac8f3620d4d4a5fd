"""The CLI's parts that need no model, database or subprocess: names.csv, the enrol-dir report and its
exit code, retries, and how API errors become exit codes."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from app.cli import main
from app.cli.common import exit_code_of
from app.cli.enroll_jobs import EnrolmentJob, JobsError, enrolment_jobs
from app.cli.enroll_report import EnrolmentReport, Outcome, Status, print_report
from app.cli.remote import ApiClient, RemoteError
from app.cli.retry import Attempts, RetryPolicy, retrying
from app.errors import FacerecError, NoFaceDetectedError, OverloadedError
from app.schemas import WarningRead

HEAVY_LIBRARIES = ("sqlalchemy", "alembic", "psycopg", "pgvector", "onnxruntime", "torch", "matplotlib", "fastapi")
FAST = RetryPolicy(attempts=3, budget_s=5.0, first_delay_s=0.001, max_delay_s=0.002)


def folder_with(root: Path, *, names: str | None, folders: tuple[str, ...] = ("ada",)) -> Path:
    for folder in folders:
        (root / folder).mkdir(parents=True)
        (root / folder / "1.jpg").write_bytes(b"not decoded here")
    if names is not None:
        (root / "names.csv").write_text(names)
    return root


def report_of(*statuses: Status, dry_run: bool = False) -> EnrolmentReport:
    outcomes = [
        Outcome(job=EnrolmentJob(folder="f", subject="f", image=Path(f"/p/{i}.jpg")), status=status, attempts=1)
        for i, status in enumerate(statuses)
    ]
    return EnrolmentReport(collection="c", dry_run=dry_run, outcomes=outcomes, seconds=2.0)


def test_names_csv_names_its_folders_and_the_others_keep_their_folder_name(tmp_path: Path) -> None:
    root = folder_with(tmp_path, names="Folder, Name\nada,Ada Lovelace\n", folders=("ada", "bob"))

    jobs = enrolment_jobs(root)

    assert [(job.folder, job.subject) for job in jobs] == [("ada", "Ada Lovelace"), ("bob", "bob")]


@pytest.mark.parametrize(
    ("names", "says"),
    [
        ("dir,person\nada,Ada\n", "must name the columns folder,name"),
        ("folder,name\nada,\n", "line 2: both folder and name are needed"),
        ("folder,name\nada,Ada\nada,Ada L\n", "line 3: folder 'ada' is named twice"),
        ("folder,name\nada," + "x" * 201 + "\n", "line 2: the name"),
    ],
)
def test_a_names_csv_that_cannot_be_used_says_where(tmp_path: Path, names: str, says: str) -> None:
    root = folder_with(tmp_path, names=names)

    with pytest.raises(JobsError) as raised:
        enrolment_jobs(root)

    assert says in str(raised.value)


def test_enrolment_report_exits_0_when_every_image_was_enrolled() -> None:
    assert report_of(Status.ENROLLED, Status.ALREADY_ENROLLED).exit_code() == 0


def test_enrolment_report_exits_1_when_any_image_was_rejected() -> None:
    assert report_of(Status.ENROLLED, Status.REJECTED).exit_code() == 1


def test_enrolment_report_exits_3_when_the_service_stayed_unavailable() -> None:
    assert report_of(Status.REJECTED, Status.UNAVAILABLE, Status.SKIPPED).exit_code() == 3


def test_enrolment_summary_line_counts_each_outcome_and_the_rate() -> None:
    report = report_of(Status.ENROLLED, Status.ENROLLED, Status.REJECTED, Status.ALREADY_ENROLLED)

    summary = report.summary()

    assert summary == "2 enrolled, 1 rejected, 1 already enrolled in 2.00 s (2.0 images/s)"


def test_enrolment_report_counts_and_lists_warnings_of_enrolled_images() -> None:
    report = report_of(Status.ENROLLED, Status.ENROLLED)
    report.outcomes[1].warnings.append(WarningRead(code="LOW_SIMILARITY_TO_SUBJECT", message="check the photo"))
    printed = io.StringIO()

    print_report(report, console=Console(file=printed, width=200))

    lines = printed.getvalue().splitlines()
    assert "1 warnings: LOW_SIMILARITY_TO_SUBJECT 1" in lines
    assert "  warning /p/1.jpg: LOW_SIMILARITY_TO_SUBJECT - check the photo" in lines
    assert report.as_json()["warnings_by_code"] == {"LOW_SIMILARITY_TO_SUBJECT": 1}


def test_retrying_tries_again_after_overloaded_and_counts_the_attempts() -> None:
    answers: list[FacerecError | str] = [OverloadedError("busy"), OverloadedError("busy"), "enrolled"]
    attempts = Attempts()

    async def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, FacerecError):
            raise answer
        return answer

    result = asyncio.run(retrying(call, policy=FAST, attempts=attempts))

    assert (result, attempts.count) == ("enrolled", 3)


def test_retrying_gives_up_after_the_attempts_with_the_last_error() -> None:
    attempts = Attempts()

    async def call() -> str:
        raise RemoteError("busy", code="OVERLOADED", status=503, transient=True)

    with pytest.raises(RemoteError, match="busy"):
        asyncio.run(retrying(call, policy=FAST, attempts=attempts))

    assert attempts.count == FAST.attempts


def test_retrying_does_not_retry_a_refusal() -> None:
    attempts = Attempts()

    async def call() -> str:
        raise NoFaceDetectedError("no face")

    with pytest.raises(NoFaceDetectedError):
        asyncio.run(retrying(call, policy=FAST, attempts=attempts))

    assert attempts.count == 1


@pytest.mark.parametrize(
    ("status", "exit_code"), [(401, 2), (403, 2), (404, 1), (409, 1), (422, 1), (429, 3), (500, 3), (503, 3), (None, 3)]
)
def test_api_errors_become_the_house_exit_codes(status: int | None, exit_code: int) -> None:
    error = RemoteError("message", code="CODE", status=status)

    assert exit_code_of(error) == exit_code


def test_a_photo_argument_that_does_not_exist_exits_2(tmp_path: Path) -> None:
    assert main(["identify", str(tmp_path / "absent.jpg")]) == 2


def test_no_arguments_exits_2_with_the_help() -> None:
    assert main([]) == 2


def answer_of(response: httpx.Response) -> int:
    """The exit code for listing keys from a server that answers `response`."""

    async def call() -> int:
        transport = httpx.MockTransport(lambda request: response)
        async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
            try:
                await ApiClient(client).keys()
            except RemoteError as error:
                return exit_code_of(error)
        return 0

    return asyncio.run(call())


def test_an_error_page_that_is_not_facerecs_is_a_configuration_error() -> None:
    assert answer_of(httpx.Response(404, text="<html>Not Found</html>")) == 2


def test_a_proxy_error_page_in_front_of_a_stopped_service_is_unavailable() -> None:
    assert answer_of(httpx.Response(502, text="<html>Bad Gateway</html>")) == 3


def test_a_success_that_is_not_facerecs_answer_is_a_configuration_error() -> None:
    assert answer_of(httpx.Response(200, text="<html>welcome</html>")) == 2


def test_the_cli_starts_without_the_database_and_model_libraries() -> None:
    # Seconds of start-up on every call, which a remote command (or --help) has no use for.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, app.cli, app.cli.remote; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()

    assert [name for name in HEAVY_LIBRARIES if name in loaded] == []
