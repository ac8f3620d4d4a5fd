"""Embedding speed: faces/s of each embedding path at batch sizes 1, 4, 8, 16.

Paths: `torch` (InceptionResnetV1, eager, fp32: the CUDA path and the reference), `onnx`
(the same weights exported to ONNX and run by ONNX Runtime, fp32: the CPU path) and `int8`
(that export statically quantized on three quarters of the crops, as `facerec models quantize`
does; FACEREC_EMBEDDING_PRECISION=int8, off by default). The inputs
are the service's own 160x160 crops (MTCNN detection, extract_face, fixed_image_standardization)
of the photos in the faces folder, or random crops when the folder is absent.

Each path runs at each intra-op thread count of --threads (default 1 and one per core). Each
(path, threads, batch size) is timed for --seconds in each of --rounds rounds, the paths taking
turns, so that load from other processes spreads over all; the table shows the best and the
median round. Prints a table and writes JSON.

    uv run python -m benchmarks.embed
    uv run python -m benchmarks.embed --batch-sizes 1,8 --paths onnx --threads 2

Without --weights (or FACEREC_WEIGHTS_PATH) the model is an untrained InceptionResnetV1 saved
in the release file's format: the speed is that of the VGGFace2 weights, the embeddings are not.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from app.engine.build import EngineConfig, build_engine, onnx_embedder
from app.engine.decode import ImageLimits
from app.engine.export import load_embedder
from app.engine.exporting import export_count
from app.engine.onnx_embedder import cache_path
from app.engine.quantize import calibration_crops, quantize_embedder
from benchmarks.common import BenchmarkError, parse_ints, run_main, write_report
from benchmarks.identify_throughput import (
    DEFAULT_FACES_DIR,
    UNTRAINED_NOTE,
    load_photos,
    machine_info,
    prepare_weights,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "embed.json"
PATHS = ("torch", "onnx", "int8")
ANY_SIZE = ImageLimits(max_bytes=1 << 30, max_pixels=1 << 30, min_side=1)

Crops = npt.NDArray[np.float32]
Embed = Callable[[Crops], npt.NDArray[np.float32]]


def engine_config(*, weights_path: Path, weights_sha256: str, cache_dir: Path, **overrides: Any) -> EngineConfig:
    values: dict[str, Any] = {"model_id": "bench", "device": "cpu", **overrides}
    return EngineConfig(weights_path=weights_path, weights_sha256=weights_sha256, cache_dir=cache_dir, **values)


def real_crops(faces_dir: Path, *, config: EngineConfig, limit: int) -> Crops:
    """Up to `limit` crops, the largest face of each photo, cropped the service's way."""
    photos = [photo for images in load_photos(faces_dir).values() for photo in images]
    engine = build_engine(config)
    crops, _ = calibration_crops(
        engine, photos=[faces_dir / photo.name for photo in photos], limits=ANY_SIZE, max_faces=limit
    )
    if not len(crops):
        raise BenchmarkError(f"MTCNN found no face in the photos of {faces_dir}.")
    return np.ascontiguousarray(crops, dtype=np.float32)


def random_crops(count: int, *, seed: int) -> Crops:
    # fixed_image_standardization maps pixels to about [-1, 1].
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(count, 3, 160, 160)).astype(np.float32)


def batches(crops: Crops, size: int) -> list[Crops]:
    """Batches of `size` crops cycling through the set (a batch may wrap around)."""
    count = max(1, len(crops) // size) if size <= len(crops) else 1
    indices = [np.arange(i * size, (i + 1) * size) % len(crops) for i in range(count)]
    return [np.ascontiguousarray(crops[index]) for index in indices]


def time_path(embed: Embed, work: Sequence[Crops], *, seconds: float, min_calls: int) -> dict[str, Any]:
    """Calls embed on the batches in turn for at least `seconds` and `min_calls` calls."""
    latencies: list[float] = []
    faces = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or len(latencies) < min_calls:
        batch = work[len(latencies) % len(work)]
        call_started = time.perf_counter()
        embed(batch)
        latencies.append(time.perf_counter() - call_started)
        faces += len(batch)
    wall = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000.0
    return {
        "calls": len(latencies),
        "faces": faces,
        "wall_s": round(wall, 3),
        "faces_per_s": round(faces / wall, 2),
        "call_ms_p50": round(float(np.percentile(ms, 50)), 2),
        "call_ms_p95": round(float(np.percentile(ms, 95)), 2),
    }


def parse_paths(text: str) -> list[str]:
    paths = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(paths) - set(PATHS))
    if not paths or unknown:
        raise argparse.ArgumentTypeError(f"paths are a comma-separated subset of {', '.join(PATHS)}")
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.embed", description="faces/s of each embedding path and batch size."
    )
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES_DIR, help="folder of <identity>/<images>")
    parser.add_argument("--crops", type=int, default=32, help="distinct face crops to cycle through")
    parser.add_argument("--batch-sizes", type=parse_ints, default=[1, 4, 8, 16], help="e.g. 1,4,8,16")
    parser.add_argument("--paths", type=parse_paths, default=list(PATHS), help="e.g. torch,onnx")
    parser.add_argument(
        "--threads",
        type=parse_ints,
        default=sorted({1, os.cpu_count() or 1}),
        help="intra-op thread counts to run every path at, e.g. 1,2",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per path, batch size and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the paths take turns within each")
    parser.add_argument("--min-calls", type=int, default=3, help="fewest timed calls per measurement")
    env_weights = os.environ.get("FACEREC_WEIGHTS_PATH")
    parser.add_argument(
        "--weights",
        type=Path,
        default=Path(env_weights) if env_weights else None,
        help="InceptionResnetV1 weights (default FACEREC_WEIGHTS_PATH; none: untrained, speed only)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    return parser


def summarise(rounds: list[dict[str, Any]], *, batch_size: int) -> dict[str, Any]:
    rates = [r["faces_per_s"] for r in rounds]
    best = max(rounds, key=lambda r: r["faces_per_s"])
    return {
        "batch_size": batch_size,
        "faces_per_s_best": best["faces_per_s"],
        "faces_per_s_median": round(float(np.median(rates)), 2),
        "ms_per_face_best": round(1000.0 / best["faces_per_s"], 2),
        "call_ms_p50_best_round": best["call_ms_p50"],
        "rounds": rounds,
    }


def print_table(results: dict[str, list[dict[str, Any]]], *, untrained: bool, crops_source: str) -> None:
    header = f"{'path':<16} {'batch':>5} {'faces/s best':>12} {'median':>8} {'ms/face':>8} {'ms/call p50':>11}"
    print()
    print(header)
    print("-" * len(header))
    for path, rows in results.items():
        for row in rows:
            print(
                f"{path:<16} {row['batch_size']:>5} {row['faces_per_s_best']:>12.1f} "
                f"{row['faces_per_s_median']:>8.1f} {row['ms_per_face_best']:>8.1f} "
                f"{row['call_ms_p50_best_round']:>11.1f}"
            )
    print()
    print(f"inputs: {crops_source}")
    if untrained:
        print(UNTRAINED_NOTE)


def run_benchmark(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="facerec-embed-", ignore_cleanup_errors=True) as temp:
        work_dir = Path(temp)
        weights = prepare_weights(args.weights, work_dir=work_dir)
        if weights.untrained:
            print(UNTRAINED_NOTE)
        faces_dir: Path = args.faces.expanduser().resolve()
        if faces_dir.is_dir():
            config = engine_config(
                weights_path=weights.path, weights_sha256=weights.sha256, cache_dir=work_dir / "onnx"
            )
            crops = real_crops(faces_dir, config=config, limit=args.crops)
            crops_source = f"{len(crops)} MTCNN face crops (160x160) from {faces_dir}"
        else:
            crops = random_crops(args.crops, seed=args.seed)
            crops_source = f"{len(crops)} random 160x160 crops ({faces_dir} is absent)"
        print(crops_source)

        model = load_embedder(weights.path, device=torch.device("cpu"))

        def torch_embed(batch: Crops) -> npt.NDArray[np.float32]:
            with torch.inference_mode():
                return np.asarray(model(torch.from_numpy(batch)).numpy())

        # label -> (thread count, embed); torch's thread count is global, so it is set before each run.
        embedders: dict[str, tuple[int, Embed]] = {}
        setup: dict[str, Any] = {}
        for threads in args.threads:
            if "torch" in args.paths:
                embedders[f"torch fp32 t{threads}"] = (threads, torch_embed)
            if "onnx" in args.paths:
                started = time.perf_counter()
                exports = export_count()
                onnx = onnx_embedder(
                    engine_config(
                        weights_path=weights.path,
                        weights_sha256=weights.sha256,
                        cache_dir=work_dir / "onnx",
                        embed_threads=threads,
                    )
                )
                # the first start exports; later ones hash, load and check the cached file against its record
                exported = export_count() > exports
                setup.setdefault("onnx_start_s", []).append(
                    {"threads": threads, "exported": exported, "s": round(time.perf_counter() - started, 2)}
                )
                setup["onnx_file_bytes"] = cache_path(work_dir / "onnx", weights_sha256=weights.sha256).stat().st_size
                embedders[f"onnx fp32 t{threads}"] = (threads, onnx.embed)
                if "onnx_vs_torch_min_cosine" not in setup:
                    torch.set_num_threads(threads)
                    reference = torch_embed(crops)
                    actual = onnx.embed(crops)
                    cosine = round(float(np.min(np.sum(reference * actual, axis=1))), 7)
                    setup["onnx_vs_torch_min_cosine"] = cosine
        if "int8" in args.paths:
            # Calibrated on three quarters of the crops and checked on the rest, as `facerec models quantize` does.
            fp32_file = cache_path(work_dir / "onnx", weights_sha256=weights.sha256)
            base = engine_config(weights_path=weights.path, weights_sha256=weights.sha256, cache_dir=work_dir / "onnx")
            onnx_embedder(base)  # the fp32 export, made if missing
            quantized = quantize_embedder(fp32_file, weights_sha256=weights.sha256, crops=crops)
            setup["int8_min_cosine_to_fp32_held_out"] = round(quantized.min_cosine, 6)
            for threads in args.threads:
                int8 = onnx_embedder(dataclasses.replace(base, embed_threads=threads, embedding_precision="int8"))
                embedders[f"onnx int8 t{threads}"] = (threads, int8.embed)
            print(f"int8: min cosine to fp32 on held-out crops {setup['int8_min_cosine_to_fp32_held_out']}")
        if "onnx_start_s" in setup:
            print(
                f"ONNX starts: {setup['onnx_start_s']}; "
                f"min cosine vs torch on the crops {setup['onnx_vs_torch_min_cosine']}"
            )

        def measure(label: str, work: Sequence[Crops], *, seconds: float, min_calls: int) -> dict[str, Any]:
            threads, embed = embedders[label]
            torch.set_num_threads(threads)
            return time_path(embed, work, seconds=seconds, min_calls=min_calls)

        for batch_size in args.batch_sizes:  # warm-up: first calls allocate and pick kernels
            for label in embedders:
                measure(label, batches(crops, batch_size), seconds=0.0, min_calls=2)
        rounds: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for round_number in range(args.rounds):
            for batch_size in args.batch_sizes:
                work = batches(crops, batch_size)
                for label in embedders:
                    measured = measure(label, work, seconds=args.seconds, min_calls=args.min_calls)
                    rounds.setdefault((label, batch_size), []).append(measured)
                    print(
                        f"round {round_number + 1}: {label} batch {batch_size}: {measured['faces_per_s']:.1f} faces/s"
                    )

    results = {
        label: [summarise(rounds[(label, size)], batch_size=size) for size in args.batch_sizes] for label in embedders
    }
    notes = [
        "int8: ONNX Runtime static QDQ quantization (int8 weights per channel, uint8 activations) calibrated "
        "on three quarters of the crops; its cosine to fp32 on the other quarter is in setup.",
        "fp32 on the CPU. torch: eager InceptionResnetV1 under inference_mode. onnx: torch.onnx.export (dynamo) "
        "of the same module, ONNX Runtime CPUExecutionProvider, all graph optimisations, intra-op spinning off "
        "(as the service runs it).",
        "faces_per_s_best is the least disturbed round; the machine may be shared with other work.",
        "tN: N intra-op threads. torch's OpenMP threads busy-wait at barriers, so when other processes hold the "
        "cores its multi-threaded figures collapse; ONNX Runtime here runs without spinning.",
    ]
    if weights.untrained:
        notes.insert(0, UNTRAINED_NOTE)
    report = {
        "benchmark": "embed",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine_info(torch.device("cpu")), "onnxruntime": importlib.metadata.version("onnxruntime")},
        "settings": {
            "threads": args.threads,
            "batch_sizes": args.batch_sizes,
            "paths": args.paths,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "inputs": crops_source,
        },
        "weights": {"sha256": weights.sha256, "untrained": weights.untrained},
        "notes": notes,
        "setup": setup,
        "results": results,
    }
    print_table(results, untrained=weights.untrained, crops_source=crops_source)
    write_report(args.out, report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("embed", build_parser, run_benchmark, argv)


if __name__ == "__main__":
    raise SystemExit(main())
