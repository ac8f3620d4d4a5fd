"""Bulk enrolment throughput: `facerec enroll-dir` over the labelled photos, as a user would run it.

Runs the CLI in a subprocess on its own embedded Postgres (in a temporary directory), once to
warm the ONNX cache and the database, then timed runs into fresh collections. Reports images/s
from the enrolment itself (the images over the enrolment time in `enroll-dir --json`, start-up excluded) and the
whole command's wall time. Prints a table and writes JSON.

    uv run python -m benchmarks.enroll [--runs 2] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.identify_throughput import git_commit, machine_info, prepare_weights

REPO = Path(__file__).resolve().parents[1]


def enroll_dir(faces: Path, *, env: dict[str, str], collection: str, concurrency: int) -> dict[str, Any]:
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "enroll-dir",
            str(faces),
            "--on-multiple-faces",
            "largest",
            "--collection",
            collection,
            "--concurrency",
            str(concurrency),
            "--json",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    wall_s = time.perf_counter() - started
    # 0: every image enrolled; 1: some refused (no face, quality), which a benchmark counts, not fails on.
    if result.returncode not in (0, 1):
        raise SystemExit(f"enroll-dir exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    report = json.loads(result.stdout)
    return {
        "images": report["images"],
        "enrolled": report["enrolled"],
        "rejected": report["rejected"],
        "enrolled_s": round(report["seconds"], 2),
        "images_per_s": report["images_per_s"],
        "command_wall_s": round(wall_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=REPO.parent / "shared" / "faces")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "enroll.json")
    args = parser.parse_args()
    if not args.faces.is_dir():
        raise SystemExit(f"no photos at {args.faces}")
    with tempfile.TemporaryDirectory(prefix="facerec-enroll-bench-") as scratch:
        work = Path(scratch)
        weights = prepare_weights(args.weights, work_dir=work)
        env = {key: value for key, value in os.environ.items() if not key.startswith("FACEREC_")}
        env.update(
            {
                "FACEREC_DATA_DIR": str(work / "data"),
                "FACEREC_MODEL_DIR": str(work / "models"),
                "FACEREC_WEIGHTS_PATH": str(weights.path),
                "FACEREC_WEIGHTS_SHA256": weights.sha256,
                "FACEREC_ALLOW_DOWNLOAD": "false",
                # With untrained weights every face is alike: the duplicate-identity guard would
                # refuse every person after the first. Its search still runs with real weights.
                "FACEREC_ENROLL_CONFLICT_CHECK": "false" if weights.untrained else "true",
            }
        )
        enroll_dir(args.faces, env=env, collection="warmup", concurrency=args.concurrency)
        runs = [
            enroll_dir(args.faces, env=env, collection=f"run{number}", concurrency=args.concurrency)
            for number in range(args.runs)
        ]
    print(f"{'run':>4} {'images':>7} {'enrolled':>9} {'rejected':>9} {'enrol s':>8} {'images/s':>9} {'command s':>10}")
    for number, run in enumerate(runs):
        print(
            f"{number:>4} {run['images']:>7} {run['enrolled']:>9} {run['rejected']:>9} {run['enrolled_s']:>8}"
            f" {run['images_per_s']:>9.1f} {run['command_wall_s']:>10.1f}"
        )
    if weights.untrained:
        print("UNTRAINED WEIGHTS: speed only; the embeddings mean nothing.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": {**machine_info(torch.device("cpu")), "git_commit": git_commit()},
                "concurrency": args.concurrency,
                "untrained_weights": weights.untrained,
                "runs": runs,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
