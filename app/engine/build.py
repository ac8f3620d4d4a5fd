"""Building the engine: one detector and one embedder per device, chosen at start-up.

On the CPU both run on ONNX Runtime from cached exports; torch is imported only in the child
process that makes an export when one is missing (app.engine.exporting). On CUDA both run on
torch. `auto` falls back to torch on the CPU when an export cannot be made, and says so in the
engine's description (the start-up log and /readyz); an explicit `onnx` backend refuses to
start instead.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnxruntime as ort  # type: ignore[import-untyped]

from app.engine import mtcnn
from app.engine.engine import EngineDescription, FaceEngine
from app.engine.export_cache import cache_problem, reference_outputs
from app.engine.exporting import export_embedder, export_mtcnn, one_child
from app.engine.faces import Detector, Embedder
from app.engine.onnx_embedder import Precision, cache_path, open_embedder
from app.engine.onnx_runtime import OnnxModelError, check_input, open_session, run_checked
from app.errors import WeightsUnavailableError

logger = logging.getLogger(__name__)

Backend = Literal["auto", "torch", "onnx"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class EngineConfig:
    """How the engine is built; the weights file has been verified against weights_sha256."""

    weights_path: Path
    weights_sha256: str
    model_id: str
    cache_dir: Path  # where ONNX exports are kept
    device: Device = "auto"
    detector_backend: Backend = "auto"
    embedding_backend: Backend = "auto"
    embedding_precision: Precision = "fp32"
    detector_min_face_px: int = 40
    detect_max_side: int = 800
    detect_threads: int = 1  # per detection call (one call per inference worker)
    embed_threads: int = 1  # of the embedder, which runs one batch at a time


def nvidia_present() -> bool:
    """Whether an NVIDIA driver is loaded, told without importing torch."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def resolve_device(requested: Device) -> str:
    if requested == "cpu" or (requested == "auto" and not nvidia_present()):
        return "cpu"
    from app.engine.torch_backend import cuda_available

    if cuda_available():
        return "cuda"
    if requested == "cuda":
        raise WeightsUnavailableError("facerec cannot start: FACEREC_DEVICE=cuda, but torch sees no CUDA device.")
    return "cpu"


def _wanted(backend: Backend, *, device: str) -> Literal["torch", "onnx"]:
    if backend == "auto":
        return "onnx" if device == "cpu" else "torch"
    return backend


def onnx_detector(*, cache_dir: Path, threads: int, min_face_px: int) -> mtcnn.OnnxMtcnn:
    """MTCNN from its cached exports (made first if missing, stale or not reproducing their record)."""
    key = mtcnn.mtcnn_sha256()
    paths = mtcnn.export_paths(cache_dir, key=key)
    for attempt in ("cached", "fresh"):
        if attempt == "fresh" or any(cache_problem(path, key_sha256=key) for path in paths.values()):
            export_mtcnn(paths, key_sha256=key)
        try:
            sessions = {name: _checked_net(path, name=name, threads=threads) for name, path in paths.items()}
            return mtcnn.OnnxMtcnn(sessions, min_face_size=min_face_px)
        except OnnxModelError as error:
            if attempt == "fresh":
                raise
            logger.warning("re-exporting MTCNN: %s", error)
    raise AssertionError("unreachable")


def _checked_net(path: Path, *, name: str, threads: int) -> ort.InferenceSession:
    session = open_session(path, threads=threads, memory_arena=False)
    pixels = check_input(mtcnn.CHECK_SHAPES[name], seed=mtcnn.CHECK_SEED)
    difference = mtcnn.max_abs_difference(
        reference_outputs(path), actual=run_checked(session, inputs={"pixels": pixels}, what=str(path))
    )
    if not difference <= mtcnn.PARITY_MAX_ABS:
        raise OnnxModelError(f"{path} does not reproduce its recorded outputs (max difference {difference:.2e})")
    return session


def onnx_embedder(config: EngineConfig) -> Embedder:
    """The embedder from its cached export (made first if missing, stale or not reproducing its record)."""
    path = cache_path(config.cache_dir, weights_sha256=config.weights_sha256)
    for attempt in ("cached", "fresh"):
        if attempt == "fresh" or cache_problem(path, key_sha256=config.weights_sha256):
            export_embedder(config.weights_path, path=path, weights_sha256=config.weights_sha256)
        try:
            return open_embedder(
                path,
                precision=config.embedding_precision,
                weights_sha256=config.weights_sha256,
                threads=config.embed_threads,
            )
        except OnnxModelError as error:
            if attempt == "fresh" or config.embedding_precision == "int8":
                raise
            logger.warning("re-exporting the embedder: %s", error)
    raise AssertionError("unreachable")


def build_engine(config: EngineConfig, *, embedder: Embedder | None = None) -> FaceEngine:
    """The engine for this configuration; raises WeightsUnavailableError when it cannot run.

    `embedder` replaces the configured one (the tests' controlled embedder).
    """
    device = resolve_device(config.device)
    fallbacks: list[str] = []
    if config.embedding_precision == "int8" and _wanted(config.embedding_backend, device=device) != "onnx":
        raise WeightsUnavailableError(
            "facerec cannot start: FACEREC_EMBEDDING_PRECISION=int8 runs on ONNX Runtime on the CPU only; "
            "set FACEREC_DEVICE=cpu or use fp32."
        )
    with one_child():  # the exports a first start makes import torch once between them
        detector = _detector(config, device=device, fallbacks=fallbacks)
        if embedder is None:
            embedder = _embedder(config, device=device, fallbacks=fallbacks)
    description = EngineDescription(
        device=device,
        detector=detector.backend,
        embedder=embedder.backend,
        model_id=config.model_id,
        fallback="; ".join(fallbacks) or None,
    )
    logger.info(
        "face engine ready: model %s on %s, detection by %s, embeddings by %s%s",
        config.model_id,
        device,
        description.detector,
        description.embedder,
        f" (fallback: {description.fallback})" if description.fallback else "",
    )
    return FaceEngine(
        detector=detector, embedder=embedder, description=description, detect_max_side=config.detect_max_side
    )


def _detector(config: EngineConfig, *, device: str, fallbacks: list[str]) -> Detector:
    wanted = _wanted(config.detector_backend, device=device)
    if wanted == "onnx":
        try:
            return onnx_detector(
                cache_dir=config.cache_dir, threads=config.detect_threads, min_face_px=config.detector_min_face_px
            )
        except (OnnxModelError, OSError) as error:
            if config.detector_backend == "onnx":
                raise WeightsUnavailableError(
                    f"facerec cannot start: the ONNX detection model failed: {error}"
                ) from None
            logger.warning("detection with torch: the ONNX detection model failed (%s)", error)
            fallbacks.append(f"detection on torch: {error}")
    from app.engine.torch_backend import TorchDetector, set_threads

    set_threads(config.detect_threads)
    return TorchDetector(device=device, min_face_size=config.detector_min_face_px)


def _embedder(config: EngineConfig, *, device: str, fallbacks: list[str]) -> Embedder:
    wanted = _wanted(config.embedding_backend, device=device)
    if wanted == "onnx":
        try:
            return onnx_embedder(config)
        except (OnnxModelError, OSError) as error:
            if config.embedding_backend == "onnx" or config.embedding_precision == "int8":
                raise WeightsUnavailableError(
                    f"facerec cannot start: the ONNX embedding model failed: {error}"
                ) from None
            logger.warning("embedding with torch: the ONNX embedding model failed (%s)", error)
            fallbacks.append(f"embedding on torch: {error}")
    from app.engine.torch_backend import TorchEmbedder

    return TorchEmbedder(config.weights_path, device=device)
