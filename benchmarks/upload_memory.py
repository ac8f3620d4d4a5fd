"""Upload memory: the resident memory of `facerec serve` while it refuses hostile uploads.

Starts the real service the way the README says (`facerec serve`, its own embedded Postgres, on a
free port), measures its idle RSS, then sends

  - every decompression bomb of tests/hostile_corpus.py (PNG, JPEG and WEBP headers claiming huge
    sizes, a real 12000 x 12000 PNG, zTXt and iCCP chunks inflating to 64 MiB) to POST /detect;
  - a 50 MB body, once with a Content-Length header and once chunked (no length), to POST /identify,
    over a raw socket that stops sending as soon as the service answers;
  - for comparison, uploads the service accepts: a 1280 x 960 photo-sized JPEG, and a /verify body
    at the request cap (two images of just under 8 MiB each);

and reports, per case, the peak RSS of the service process during the request next to its idle RSS.
The peak is exact, not sampled: the kernel's high-water mark (VmHWM) is reset before each request
through /proc/PID/clear_refs and read after the answer. Linux only. Prints a table and writes JSON.

    uv run python -m benchmarks.upload_memory
    uv run python -m benchmarks.upload_memory --repeat 5 --body-mb 100

Authentication is switched off (FACEREC_AUTH_ENABLED=false) so that every upload reaches the image
decoder: the worst case for memory. With it on, an upload without a valid key is still read and parsed
as a form (up to the body cap) before the 401.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import torch

from app.config import VGGFACE2_WEIGHTS_SHA256
from benchmarks.common import BenchmarkError, run_main, write_report
from benchmarks.identify_throughput import (
    machine_info,
    prepare_weights,
    running_service,
)
from benchmarks.processes import postgres_pids, service_pid
from tests.hostile_corpus import BOMBS, DEFAULT_MAX_IMAGE_BYTES, encode, gradient

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "upload_memory.json"
BOUNDARY = "facerec-upload-memory"
SEND_CHUNK = 1024 * 1024

Files = dict[str, tuple[str, bytes, str]]


# --- /proc ---------------------------------------------------------------------------------------


def _status_kib(pid: int, field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB$", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    if match is None:
        raise BenchmarkError(f"/proc/{pid}/status has no {field}")
    return int(match.group(1))


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmHWM") / 1024


def reset_peak_rss(pid: int) -> None:
    """Set the process's high-water mark back to its current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _pss_mib(pid: int) -> float:
    """Proportional set size: shared pages divided among their users, so that a sum over processes is fair."""
    match = re.search(r"^Pss:\s+(\d+) kB$", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def postgres_pss_mib(pgdata: Path) -> float | None:
    """PSS of the embedded Postgres (pg_ctl detaches it from the service, so it is not in its process tree)."""
    pids = postgres_pids(pgdata)
    if pids is None:
        return None
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # a backend that exited meanwhile
            total += _pss_mib(pid)
    return round(total, 1)


# --- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    code: str | None
    sent_bytes: int
    seconds: float


def _code(body: bytes) -> str | None:
    try:
        return str(json.loads(body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def post_files(client: httpx.Client, path: str, files: Files) -> Answer:
    request = client.build_request("POST", path, files=files)
    sent = len(request.read())
    started = time.perf_counter()
    response = client.send(request)
    return Answer(response.status_code, _code(response.content), sent, time.perf_counter() - started)


def _read_response(connection: socket.socket) -> tuple[int, bytes]:
    received = b""
    while b"\r\n\r\n" not in received:
        data = connection.recv(65536)
        if not data:
            raise BenchmarkError(f"the service closed the connection without an answer ({received[:200]!r})")
        received += data
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        data = connection.recv(65536)
        if not data:
            break
        body += data
    return int(lines[0].split()[1]), body[:length]


def _body_chunks(total: int) -> Iterator[bytes]:
    """A multipart body of `total` bytes: one image part of JPEG magic and zeros, never held whole."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + b"\xff\xd8\xff"
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    yield head
    remaining = total - len(head) - len(tail)
    while remaining > 0:
        size = min(SEND_CHUNK, remaining)
        yield bytes(size)
        remaining -= size
    yield tail


def post_big_body(port: int, *, total: int, chunked: bool, timeout_s: float) -> Answer:
    """POST /identify with a `total`-byte body over a raw socket, stopping once the service answers."""
    length_header = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        f"POST /identify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{length_header}\r\n\r\n"
    ).encode()
    sent = 0
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as connection:
        connection.sendall(head)
        try:
            for piece in _body_chunks(total):
                if select.select([connection], [], [], 0)[0]:
                    break  # the service has answered: the rest is never sent
                connection.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
            else:
                if chunked:
                    connection.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the service closed the connection after answering
        status, body = _read_response(connection)
    return Answer(status, _code(body), sent, time.perf_counter() - started)


# --- cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    status: int
    code: str | None
    sent_bytes: int
    seconds: float
    rss_before_mib: float  # the high-water mark starts here
    peak_rss_mib: float
    rss_after_mib: float

    @property
    def peak_over_before_mib(self) -> float:
        return round(self.peak_rss_mib - self.rss_before_mib, 1)


@dataclass(frozen=True)
class CaseResult:
    name: str
    request: str
    kind: str  # bomb, body, accepted
    runs: list[Measurement]

    @property
    def peak_rss_mib(self) -> float:
        return max(run.peak_rss_mib for run in self.runs)

    @property
    def peak_over_before_mib(self) -> float:
        """The most one request of this case added to the RSS it found."""
        return max(run.peak_over_before_mib for run in self.runs)


def _padded_png(size: int) -> bytes:
    """A valid 64 x 48 PNG followed by zeros up to `size` bytes."""
    data = encode(gradient(), "PNG")
    return data + bytes(size - len(data))


@dataclass(frozen=True)
class Plan:
    """What one case sends: a multipart upload (files), or an oversized body of zeros."""

    name: str
    path: str
    kind: str  # bomb, body, accepted
    files: Files | None = None
    chunked: bool = False  # for an oversized body: Transfer-Encoding: chunked instead of Content-Length


def plans(*, body_bytes: int) -> list[Plan]:
    photo_sized = encode(gradient(width=1280, height=960), "JPEG", quality=90)
    at_cap = _padded_png(DEFAULT_MAX_IMAGE_BYTES - 1)
    megabytes = body_bytes // 10**6
    return [
        *(
            Plan(upload.name, "/detect", "bomb", {"image": (upload.filename, upload.data, upload.content_type)})
            for upload in BOMBS
        ),
        Plan(f"body-{megabytes}mb-content-length", "/identify", "body"),
        Plan(f"body-{megabytes}mb-chunked", "/identify", "body", chunked=True),
        Plan("jpeg-1280x960", "/detect", "accepted", {"image": ("photo.jpg", photo_sized, "image/jpeg")}),
        Plan(
            "verify-two-8mib-images",
            "/verify",
            "accepted",
            {"image": ("a.png", at_cap, "image/png"), "image_b": ("b.png", at_cap, "image/png")},
        ),
    ]


def run_cases(*, base_url: str, pid: int, repeat: int, body_bytes: int, timeout_s: float) -> list[CaseResult]:
    port = int(base_url.rsplit(":", 1)[1])
    results: list[CaseResult] = []
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        for plan in plans(body_bytes=body_bytes):
            runs: list[Measurement] = []
            for _ in range(repeat):
                reset_peak_rss(pid)
                before = rss_mib(pid)
                if plan.files is None:
                    answer = post_big_body(port, total=body_bytes, chunked=plan.chunked, timeout_s=timeout_s)
                else:
                    answer = post_files(client, plan.path, plan.files)
                runs.append(
                    Measurement(
                        status=answer.status,
                        code=answer.code,
                        sent_bytes=answer.sent_bytes,
                        seconds=round(answer.seconds, 4),
                        rss_before_mib=round(before, 1),
                        peak_rss_mib=round(peak_rss_mib(pid), 1),
                        rss_after_mib=round(rss_mib(pid), 1),
                    )
                )
            result = CaseResult(name=plan.name, request=f"POST {plan.path}", kind=plan.kind, runs=runs)
            last = runs[-1]
            print(f"{plan.name}: HTTP {last.status} {last.code or ''}, peak {result.peak_rss_mib:.0f} MiB")
            results.append(result)
    return results


def idle_rss(pid: int, *, pgdata: Path, seconds: float) -> dict[str, float | None]:
    """RSS sampled every 100 ms for `seconds` after start-up (median, min, max), and Postgres' PSS."""
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(rss_mib(pid))
        time.sleep(0.1)
    samples.sort()
    return {
        "service_rss_mib": round(samples[len(samples) // 2], 1),
        "service_rss_min_mib": round(samples[0], 1),
        "service_rss_max_mib": round(samples[-1], 1),
        "postgres_pss_mib": postgres_pss_mib(pgdata),
    }


# --- report --------------------------------------------------------------------------------------


def print_table(idle_mib: float, postgres_mib: float | None, results: Sequence[CaseResult], after_mib: float) -> None:
    header = (
        f"{'case':<36} {'request':<15} {'answer':<26} {'sent MB':>8} {'max ms':>7} {'peak MiB':>9} "
        f"{'over idle':>9} {'request +':>9}"
    )
    print()
    postgres = "unknown" if postgres_mib is None else f"{postgres_mib:.0f} MiB"
    print(f"idle RSS of the service process: {idle_mib:.0f} MiB (embedded Postgres, PSS: {postgres})")
    print(header)
    print("-" * len(header))
    for result in results:
        last = result.runs[-1]
        answer = f"{last.status} {last.code or ''}".strip()
        slowest_ms = max(run.seconds for run in result.runs) * 1000
        print(
            f"{result.name:<36} {result.request:<15} {answer:<26} {last.sent_bytes / 1e6:>8.2f} "
            f"{slowest_ms:>7.0f} {result.peak_rss_mib:>9.0f} {result.peak_rss_mib - idle_mib:>+9.0f} "
            f"{result.peak_over_before_mib:>+9.1f}"
        )
    print(f"\nRSS after all cases: {after_mib:.0f} MiB")
    print("over idle: peak RSS minus idle RSS; request +: the most one request added to the RSS it started from")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.upload_memory",
        description="Peak RSS of `facerec serve` while it refuses decompression bombs and oversized bodies.",
    )
    env_weights = os.environ.get("FACEREC_WEIGHTS_PATH")
    parser.add_argument(
        "--weights",
        type=Path,
        default=Path(env_weights) if env_weights else None,
        help="InceptionResnetV1 weights (default FACEREC_WEIGHTS_PATH; none: an untrained file of the same shape)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="requests per case (the table shows the highest peak)")
    parser.add_argument("--body-mb", type=int, default=50, help="size of the oversized body, in MB (10^6 bytes)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="the service's device")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="how long idle RSS is sampled")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds to wait for /readyz")
    parser.add_argument("--shutdown-timeout", type=float, default=60.0, help="seconds between SIGTERM and kill")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds per request")
    return parser


def run_benchmark(args: argparse.Namespace) -> int:
    if not Path("/proc/self/clear_refs").exists():
        raise BenchmarkError("this benchmark reads /proc (Linux only).")
    body_bytes = args.body_mb * 10**6
    # Passed through to the service by service_environment(): every upload must reach the decoder.
    os.environ["FACEREC_AUTH_ENABLED"] = "false"
    with tempfile.TemporaryDirectory(prefix="facerec-upload-memory-", ignore_cleanup_errors=True) as temp:
        work_dir = Path(temp)
        weights = prepare_weights(args.weights, work_dir=work_dir)
        print("starting `facerec serve` ...")
        with running_service(
            work_dir=work_dir,
            weights=weights,
            device=args.device,
            startup_timeout_s=args.startup_timeout,
            shutdown_timeout_s=args.shutdown_timeout,
        ) as (base_url, passed_through):
            pid = service_pid()
            idle = idle_rss(pid, pgdata=work_dir / "data" / "pgdata", seconds=args.idle_seconds)
            idle_mib = float(idle["service_rss_mib"] or 0.0)
            print(f"idle RSS {idle_mib:.0f} MiB (pid {pid})")
            results = run_cases(
                base_url=base_url, pid=pid, repeat=args.repeat, body_bytes=body_bytes, timeout_s=args.request_timeout
            )
            after_mib = round(rss_mib(pid), 1)
    postgres_mib = idle["postgres_pss_mib"]
    print_table(idle_mib, postgres_mib, results, after_mib)
    report = {
        "benchmark": "upload_memory",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(torch.device("cuda" if args.device == "cuda" else "cpu")),
        "settings": {
            "repeat": args.repeat,
            "body_bytes": body_bytes,
            "device": args.device,
            "service_command": [sys.executable, "-m", "app.cli", "serve"],
            "service_settings_passed_through": passed_through,
        },
        "weights": {
            "sha256": weights.sha256,
            "untrained": weights.untrained,
            "is_vggface2_release": weights.sha256 == VGGFACE2_WEIGHTS_SHA256,
        },
        "notes": [
            "RSS is of the `facerec serve` Python process. The embedded Postgres runs detached from it and is "
            "reported separately as PSS (its backends share memory; PSS divides it fairly).",
            "peak_rss_mib is the kernel's VmHWM for the service process, reset through /proc/PID/clear_refs before "
            "each request and read after its answer: an exact peak, not a sample. peak_over_before_mib is that peak "
            "minus the RSS at the reset, i.e. what the request itself added; RSS drifts up over the run because "
            "the allocator keeps freed memory.",
            "FACEREC_AUTH_ENABLED=false so that every upload reaches the image decoder (the worst case for memory).",
            "Oversized bodies go over a raw socket that stops sending once the service answers; sent_bytes is what "
            "was written before the 413 (the kernel's socket buffers hold part of it).",
        ],
        "idle": idle,
        "rss_after_all_cases_mib": after_mib,
        "cases": [
            {
                **asdict(result),
                "runs": [{**asdict(run), "peak_over_before_mib": run.peak_over_before_mib} for run in result.runs],
                "peak_rss_mib": result.peak_rss_mib,
                "peak_over_idle_mib": round(result.peak_rss_mib - idle_mib, 1),
                "peak_over_before_mib": result.peak_over_before_mib,
            }
            for result in results
        ],
    }
    write_report(args.out, report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("upload_memory", build_parser, run_benchmark, argv)


if __name__ == "__main__":
    raise SystemExit(main())
