"""Detection: milliseconds per photo and faces found, per backend and per detection setting.

For each (backend, FACEREC_DETECT_MAX_SIDE, FACEREC_DETECTOR_MIN_FACE_PX) asked for, every photo
in ../shared/faces is downscaled as the engine does and run through MTCNN, one at a time, with
one thread. Reported: mean and p50/p95 milliseconds over all photos and over the large ones
(long side >= 600 px), the faces of the reference run (torch, full resolution, 20 px minimum)
found again (IoU >= 0.5), and on how many photos the count of faces with probability >= 0.9
equals the manifest's `faces_expected`.

    uv run python -m benchmarks.detect
    uv run python -m benchmarks.detect --settings 800:40,800:20,640:32 --backends onnx

MTCNN's weights ship with facenet-pytorch and are trained: these are real detections.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from app.engine.build import onnx_detector
from app.engine.crops import downscale
from benchmarks.common import BenchmarkError, run_main, write_report
from benchmarks.identify_throughput import DEFAULT_FACES_DIR, machine_info

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "detect.json"
LARGE_SIDE = 600
CONFIDENT = 0.9
WARMUP = 5  # untimed photos per setting: the first calls into a fresh detector are slow
REFERENCE = ("torch", 1 << 20, 20)

Boxes = np.ndarray
Detect = Callable[[Image.Image], tuple[Boxes, np.ndarray]]  # boxes [n, 4], probabilities [n]


@dataclass(frozen=True)
class Photo:
    path: str
    image: Image.Image
    faces_expected: int | None


def load_photos(faces_dir: Path) -> list[Photo]:
    manifest = faces_dir / "manifest.csv"
    if not manifest.is_file():
        raise BenchmarkError(f"no {manifest}: point --faces at the labelled photos")
    with manifest.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    return [
        Photo(
            path=row["path"],
            image=Image.open(faces_dir / row["path"]).convert("RGB"),
            faces_expected=int(row["faces_expected"]) if row["faces_expected"].isdigit() else None,
        )
        for row in rows
    ]


def detector(backend: str, min_face: int, cache_dir: Path) -> Detect:
    torch_mtcnn = MTCNN(keep_all=True, min_face_size=min_face, device=torch.device("cpu")).eval()
    if backend == "onnx":
        onnx = onnx_detector(cache_dir=cache_dir, threads=1, min_face_px=min_face)

        def detect_onnx(image: Image.Image) -> tuple[Boxes, np.ndarray]:
            found = onnx.detections(image)
            return found.boxes, found.probabilities

        return detect_onnx

    def detect_torch(image: Image.Image) -> tuple[Boxes, np.ndarray]:
        with torch.inference_mode():
            boxes, probabilities = torch_mtcnn.detect(image)
        if boxes is None:
            return np.zeros((0, 4)), np.zeros(0)
        return np.asarray(boxes), np.asarray(probabilities)

    return detect_torch


def run_setting(detect: Detect, photos: Sequence[Photo], max_side: int) -> tuple[list[float], list[tuple[Boxes, Any]]]:
    """Milliseconds per photo, and what was found, in original pixels."""
    times: list[float] = []
    found: list[tuple[Boxes, Any]] = []
    for photo in photos[:WARMUP]:
        detect(downscale(photo.image, max_side=max_side)[0])
    for photo in photos:
        small, scale = downscale(photo.image, max_side=max_side)
        started = time.perf_counter()
        boxes, probabilities = detect(small)
        times.append((time.perf_counter() - started) * 1000)
        found.append((boxes / scale, probabilities))
    return times, found


def iou(a: Boxes, b: Boxes) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def summarise(
    photos: Sequence[Photo], times: list[float], found: list[tuple[Boxes, Any]], reference: list[tuple[Boxes, Any]]
) -> dict[str, Any]:
    large = [t for t, photo in zip(times, photos, strict=True) if max(photo.image.size) >= LARGE_SIDE]
    reference_faces = sum(len(boxes) for boxes, _ in reference)
    refound = sum(
        sum(1 for face in ref_boxes if any(iou(face, other) >= 0.5 for other in boxes))
        for (ref_boxes, _), (boxes, _) in zip(reference, found, strict=True)
    )
    labelled = [
        (photo, probs) for photo, (_, probs) in zip(photos, found, strict=True) if photo.faces_expected is not None
    ]
    counts_right = sum(
        1 for photo, probs in labelled if int(np.sum(np.asarray(probs) >= CONFIDENT)) == photo.faces_expected
    )
    return {
        "mean_ms": float(np.mean(times)),
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "large_photos": len(large),
        "large_mean_ms": float(np.mean(large)) if large else None,
        "reference_faces": reference_faces,
        "reference_faces_found": refound,
        "labelled_photos": len(labelled),
        "counts_equal_to_manifest": counts_right,
    }


def parse_settings(text: str) -> list[tuple[int, int]]:
    try:
        pairs = [tuple(int(part) for part in item.split(":")) for item in text.split(",") if item]
    except ValueError:
        raise argparse.ArgumentTypeError(f"settings are MAX_SIDE:MIN_FACE pairs, not {text!r}") from None
    if not pairs or any(len(pair) != 2 or min(pair) < 12 for pair in pairs):
        raise argparse.ArgumentTypeError(f"settings are MAX_SIDE:MIN_FACE pairs of at least 12, not {text!r}")
    return [(pair[0], pair[1]) for pair in pairs]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detect", description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES_DIR, help="labelled photos (manifest.csv)")
    parser.add_argument(
        "--settings",
        type=parse_settings,
        default=parse_settings("800:40,800:20,640:40,640:32,512:20"),
        help="MAX_SIDE:MIN_FACE pairs (default: %(default)s)",
    )
    parser.add_argument("--backends", default="torch,onnx", help="comma-separated: torch, onnx")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def run_benchmark(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    photos = load_photos(args.faces)
    backends = [name for name in args.backends.split(",") if name]
    if not set(backends) <= {"torch", "onnx"}:
        raise BenchmarkError(f"unknown backend in {args.backends!r}")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="facerec-detect-") as work:
        cache_dir = Path(work) / "onnx"
        detector("onnx", 20, cache_dir)  # export once, outside the timings
        _, reference = run_setting(detector(REFERENCE[0], REFERENCE[2], cache_dir), photos, REFERENCE[1])
        print(f"{len(photos)} photos; reference: torch, full resolution, 20 px minimum face")
        header = ("backend", "side", "min", "mean", "p50", "p95", "large", "found", "counts")
        print("{:8} {:>5} {:>4} {:>7} {:>7} {:>7} {:>7} {:>9} {:>8}".format(*header))
        for max_side, min_face in args.settings:
            for backend in backends:
                times, found = run_setting(detector(backend, min_face, cache_dir), photos, max_side)
                row = {"backend": backend, "max_side": max_side, "min_face_px": min_face}
                row |= summarise(photos, times, found, reference)
                results.append(row)
                print(
                    f"{backend:8} {max_side:>5} {min_face:>4} {row['mean_ms']:>6.1f}ms {row['p50_ms']:>6.1f}ms "
                    f"{row['p95_ms']:>6.1f}ms {row['large_mean_ms'] or 0:>6.1f}ms "
                    f"{row['reference_faces_found']:>4}/{row['reference_faces']:<4} "
                    f"{row['counts_equal_to_manifest']:>3}/{row['labelled_photos']}"
                )
    print("mean/p50/p95: all photos; large: mean over photos >= 600 px; found: reference faces found again;")
    print("counts: photos whose faces with probability >= 0.9 number the manifest's faces_expected")
    write_report(
        args.out,
        {
            "benchmark": "detect",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_info(torch.device("cpu")),
            "photos": len(photos),
            "results": results,
        },
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("detect", build_parser, run_benchmark, argv)


if __name__ == "__main__":
    raise SystemExit(main())
