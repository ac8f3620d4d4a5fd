"""Memory under sustained load: the RSS of `facerec serve` while /identify runs for minutes.

Starts the service as the README says (embedded Postgres, its default settings), enrols one
photo per identity of ../shared/faces, warms up, then keeps `--concurrency` clients sending
/identify with the labelled photos, round and round, for `--minutes`. Every `--every` seconds it
samples the service process's RSS (and the embedded Postgres's PSS). Reported: RSS at the start
and end of the timed load, its peak, the least-squares slope in MiB per minute over the second
half (after caches and arenas have filled), requests, throughput and errors.

    uv run python -m benchmarks.soak                  # 10 minutes at concurrency 8
    uv run python -m benchmarks.soak --minutes 2 --concurrency 4
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from benchmarks.common import BenchmarkError, positive_int, run_main, write_report
from benchmarks.identify_throughput import (
    DEFAULT_FACES_DIR,
    Photo,
    enrol_gallery,
    first_run_key,
    identify_once,
    load_photos,
    machine_info,
    prepare_weights,
    running_service,
)
from benchmarks.processes import service_pid
from benchmarks.upload_memory import postgres_pss_mib, rss_mib

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "soak.json"


def drive(
    client: httpx.Client, photos: Sequence[Photo], *, concurrency: int, stop: threading.Event
) -> tuple[Counter[str], list[float]]:
    """Send /identify from `concurrency` threads until stop is set: outcomes and latencies."""
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()

    def client_loop(offset: int) -> None:
        index = offset
        while not stop.is_set():
            outcome = identify_once(client, photos[index % len(photos)])
            index += concurrency
            with lock:
                outcomes["ok" if outcome.ok else outcome.error or "error"] += 1
                latencies.append(outcome.latency_s)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(client_loop, offset) for offset in range(concurrency)]:
            future.result()
    return outcomes, latencies


def slope_mib_per_minute(samples: Sequence[tuple[float, float]]) -> float:
    seconds = np.array([t for t, _ in samples])
    rss = np.array([r for _, r in samples])
    if len(samples) < 2 or np.ptp(seconds) == 0:
        return 0.0
    return float(np.polyfit(seconds / 60.0, rss, 1)[0])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES_DIR, help="folder of <identity>/<images>")
    parser.add_argument("--minutes", type=float, default=10.0, help="timed load (default 10)")
    parser.add_argument("--concurrency", type=positive_int, default=8)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=positive_int, default=100, help="untimed requests first")
    parser.add_argument("--weights", type=Path, default=None, help="InceptionResnetV1 weights (default: untrained)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def run_benchmark(args: argparse.Namespace) -> int:
    if args.minutes <= 0 or args.every <= 0:
        raise BenchmarkError("--minutes and --every must be positive")
    by_identity = load_photos(args.faces.expanduser().resolve())
    gallery = [photos[0] for photos in by_identity.values()]
    probes = [photo for photos in by_identity.values() for photo in photos]
    with tempfile.TemporaryDirectory(prefix="facerec-soak-", ignore_cleanup_errors=True) as temp:
        work_dir = Path(temp)
        weights = prepare_weights(args.weights, work_dir=work_dir)
        print("starting `facerec serve` ...")
        with running_service(
            work_dir=work_dir, weights=weights, device="cpu", startup_timeout_s=300, shutdown_timeout_s=60
        ) as (base_url, passed_through):
            pid = service_pid()
            pgdata = work_dir / "data" / "pgdata"
            headers = {"Authorization": f"Bearer {first_run_key(work_dir / 'service.log', timeout_s=60)}"}
            limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
            with httpx.Client(base_url=base_url, headers=headers, limits=limits, timeout=120) as client:
                enrolment = enrol_gallery(client, gallery)
                idle_mib = rss_mib(pid)
                for photo in probes[: args.warmup]:
                    identify_once(client, photo)
                print(f"enrolled {len(enrolment.enrolled)}; idle RSS {idle_mib:.0f} MiB; load for {args.minutes:g} min")
                stop = threading.Event()
                result: list[tuple[Counter[str], list[float]]] = []
                driver = threading.Thread(
                    target=lambda: result.append(drive(client, probes, concurrency=args.concurrency, stop=stop))
                )
                samples: list[tuple[float, float]] = []
                postgres: list[float | None] = []
                started = time.monotonic()
                driver.start()
                try:
                    while (elapsed := time.monotonic() - started) < args.minutes * 60:
                        samples.append((elapsed, rss_mib(pid)))
                        postgres.append(postgres_pss_mib(pgdata))
                        print(f"  {elapsed:6.0f}s  RSS {samples[-1][1]:7.1f} MiB")
                        time.sleep(min(args.every, max(0.0, args.minutes * 60 - elapsed)))
                    samples.append((time.monotonic() - started, rss_mib(pid)))
                finally:
                    stop.set()
                    driver.join()
                seconds = time.monotonic() - started
    outcomes, latencies = result[0]
    second_half = [sample for sample in samples if sample[0] >= samples[-1][0] / 2]
    report: dict[str, Any] = {
        "benchmark": "soak",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(torch.device("cpu")),
        "settings": {"minutes": args.minutes, "concurrency": args.concurrency, "passed_through": passed_through},
        "idle_rss_mib": round(idle_mib, 1),
        "start_rss_mib": round(samples[0][1], 1),
        "end_rss_mib": round(samples[-1][1], 1),
        "peak_rss_mib": round(max(rss for _, rss in samples), 1),
        "slope_second_half_mib_per_min": round(slope_mib_per_minute(second_half), 2),
        "postgres_pss_mib_start_end": [postgres[0], postgres[-1]] if postgres else None,
        "requests": sum(outcomes.values()),
        "outcomes": dict(outcomes),
        "requests_per_s": round(sum(outcomes.values()) / seconds, 2),
        "latency_ms_p50_p99": [round(float(np.percentile(latencies, q)) * 1000, 1) for q in (50, 99)]
        if latencies
        else None,
        "samples": [[round(t, 1), round(r, 1)] for t, r in samples],
    }
    print(
        f"RSS start {report['start_rss_mib']} MiB, end {report['end_rss_mib']} MiB, peak {report['peak_rss_mib']} "
        f"MiB; second-half slope {report['slope_second_half_mib_per_min']} MiB/min; "
        f"{report['requests']} requests ({report['requests_per_s']}/s), outcomes {report['outcomes']}"
    )
    write_report(args.out, report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("soak", build_parser, run_benchmark, argv)


if __name__ == "__main__":
    raise SystemExit(main())
