"""Start-up time and idle memory of `facerec serve`, as the README starts it.

The service starts on its own embedded Postgres in a fresh temporary folder: first cold (the
Postgres data folder made, ONNX models exported from the weights), then `--warm` more times on
the same folder (caches in place). For each start: the seconds from launching the process to
/readyz answering 200, and, after `--idle` seconds of rest, the service process's RSS, its
Postgres's PSS, and whether any torch library is mapped into the service (it should not be:
ONNX Runtime serves, and torch is imported only to export).

    uv run python -m benchmarks.startup
    uv run python -m benchmarks.startup --warm 5 --idle 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import positive_int, run_main, write_report
from benchmarks.identify_throughput import Weights, machine_info, prepare_weights, running_service
from benchmarks.processes import service_pid
from benchmarks.upload_memory import postgres_pss_mib, rss_mib

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "startup.json"


def torch_libraries(pid: int) -> list[str]:
    """The torch shared libraries mapped into a process (empty when torch was never imported)."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    paths = {line.split()[-1] for line in maps if len(line.split()) >= 6}
    return sorted(path for path in paths if "/torch/lib/" in path)


def one_start(*, work_dir: Path, weights: Weights, idle_s: float, label: str) -> dict[str, Any]:
    started = time.perf_counter()
    with running_service(
        work_dir=work_dir, weights=weights, device="cpu", startup_timeout_s=600.0, shutdown_timeout_s=60.0
    ):
        ready_s = time.perf_counter() - started
        pid = service_pid()
        time.sleep(idle_s)
        libraries = torch_libraries(pid)
        result = {
            "start": label,
            "ready_s": round(ready_s, 2),
            "service_rss_mib": round(rss_mib(pid), 1),
            "postgres_pss_mib": postgres_pss_mib(work_dir / "data" / "pgdata"),
            "torch_mapped": bool(libraries),
            "torch_libraries": libraries,
        }
    print(
        f"{label:>5}: ready in {result['ready_s']:.2f} s, service RSS {result['service_rss_mib']:.0f} MiB, "
        f"Postgres PSS {result['postgres_pss_mib']} MiB, torch mapped: {result['torch_mapped']}"
    )
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--warm", type=positive_int, default=3, help="warm starts after the cold one")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of rest before memory is read")
    parser.add_argument("--weights", type=Path, default=None, help="InceptionResnetV1 VGGFace2 state_dict")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def run_benchmark(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="facerec-startup-") as work:
        work_dir = Path(work)
        weights = prepare_weights(args.weights, work_dir=work_dir)
        starts = [one_start(work_dir=work_dir, weights=weights, idle_s=args.idle, label="cold")]
        starts += [
            one_start(work_dir=work_dir, weights=weights, idle_s=args.idle, label=f"warm{n}")
            for n in range(1, args.warm + 1)
        ]
    warm = starts[1:]
    summary = {
        "cold_ready_s": starts[0]["ready_s"],
        "warm_ready_s_median": round(statistics.median(s["ready_s"] for s in warm), 2),
        "warm_ready_s_max": max(s["ready_s"] for s in warm),
        "idle_service_rss_mib_max": max(s["service_rss_mib"] for s in starts),
        "torch_mapped_in_any": any(s["torch_mapped"] for s in starts),
    }
    print(
        f"\ncold start {summary['cold_ready_s']:.1f} s; warm start median {summary['warm_ready_s_median']:.2f} s "
        f"(max {summary['warm_ready_s_max']:.2f}); idle service RSS at most "
        f"{summary['idle_service_rss_mib_max']:.0f} MiB; torch mapped in a service: {summary['torch_mapped_in_any']}"
    )
    write_report(
        args.out,
        {
            "benchmark": "startup",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_info(torch.device("cpu")),
            "summary": summary,
            "starts": starts,
        },
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("startup", build_parser, run_benchmark, argv)


if __name__ == "__main__":
    raise SystemExit(main())
