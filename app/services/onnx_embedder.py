"""InceptionResnetV1 on ONNX Runtime: the CPU embedding path.

The loaded torch model (weights already verified and strictly loaded) is exported once to
`<cache_dir>/<weights sha256>.onnx`, with a dynamic batch axis, and reused by every later start.
Beside it, `<weights sha256>.onnx.json` records the ONNX file's own SHA-256: a cached file that
does not match it (truncated, overwritten, half-copied) is exported again, never run. Every
session, fresh or cached, must also reproduce the torch model's embeddings on a fixed input
before it is used.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
import torch

from app.services.weights import sha256_of

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 512
CROP_SIZE = 160
INPUT_NAME = "crops"
OUTPUT_NAME = "embeddings"
# Cosine similarity the ONNX model must reach against torch on the self-check input.
PARITY_MIN_COSINE = 0.9999
CACHE_FORMAT = 1

Embeddings = npt.NDArray[np.float32]
Crops = npt.NDArray[np.float32]

# Exports per process, for tests that must see a cache hit without timing it.
_export_count = 0
_export_count_lock = threading.Lock()


class OnnxModelError(Exception):
    """The ONNX model could not be exported, loaded, or does not reproduce the torch model."""


def export_count() -> int:
    return _export_count


def cache_path(cache_dir: Path, weights_sha256: str) -> Path:
    return cache_dir / f"{weights_sha256.lower()}.onnx"


def _manifest_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_input() -> torch.Tensor:
    # Fixed, so that every start checks the same thing; shaped like standardised crops ([-1, 1]).
    generator = torch.Generator().manual_seed(20180402)
    return torch.rand((2, 3, CROP_SIZE, CROP_SIZE), generator=generator) * 2.0 - 1.0


def l2_normalise(rows: npt.NDArray[np.float32]) -> Embeddings:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


def export_onnx(model: torch.nn.Module, path: Path, *, weights_sha256: str) -> None:
    """Export the model to path (dynamic batch axis) through a temporary file renamed into place."""
    global _export_count
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu_model = model if next(model.parameters()).device.type == "cpu" else _cpu_copy(model)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(descriptor)
    temp = Path(temp_name)
    try:
        batch = torch.export.Dim("batch", min=1, max=4096)
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                cpu_model,
                (_check_input(),),
                str(temp),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamo=True,
                external_data=False,  # one self-contained file (~95 MB), hashed as a whole
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
        manifest = {
            "format": CACHE_FORMAT,
            "weights_sha256": weights_sha256.lower(),
            "onnx_sha256": sha256_of(temp),
            "torch": torch.__version__,
        }
        temp.chmod(0o644)  # mkstemp makes it owner-only; the service may run as another user
        manifest_temp = temp.with_suffix(".json.tmp")
        manifest_temp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(temp, path)
        os.replace(manifest_temp, _manifest_path(path))
    except Exception as error:
        raise OnnxModelError(f"exporting the embedding model to ONNX failed: {error}") from error
    finally:
        temp.unlink(missing_ok=True)
        temp.with_suffix(".json.tmp").unlink(missing_ok=True)
    with _export_count_lock:
        _export_count += 1
    logger.info("exported the embedding model to %s", path)


def _cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model).cpu()


def cache_problem(path: Path, *, weights_sha256: str) -> str | None:
    """Why the cached file cannot be used, or None when it matches its manifest."""
    if not path.is_file():
        return "not exported yet"
    try:
        manifest = json.loads(_manifest_path(path).read_text())
    except (OSError, ValueError) as error:
        return f"its manifest is unreadable ({type(error).__name__})"
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        return "its manifest is of another format"
    if manifest.get("weights_sha256") != weights_sha256.lower():
        return "it was exported from other weights"
    if manifest.get("onnx_sha256") != sha256_of(path):
        return "its SHA-256 does not match its manifest (corrupt or replaced)"
    return None


def _session(path: Path, *, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Without spinning, idle ONNX threads give the cores back to MTCNN (torch) at once; detection of
    # one request runs while another is embedded.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
        raise OnnxModelError(f"ONNX Runtime cannot load {path}: {error}") from None


class OnnxEmbedder:
    """L2-normalised 512-d embeddings of standardised 160x160 crops, by ONNX Runtime on the CPU."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        weights_sha256: str,
        cache_dir: Path,
        threads: int = 0,
    ) -> None:
        """Use the cached export for these weights, or export now; check it against the torch model."""
        self.path = cache_path(cache_dir, weights_sha256)
        self.threads = threads if threads > 0 else _default_threads()
        self.exported = False
        reference = _reference(model)
        problem = cache_problem(self.path, weights_sha256=weights_sha256)
        if problem is None:
            try:
                self._session = _session(self.path, threads=self.threads)
                self._check(reference)
            except OnnxModelError as error:
                problem = str(error)
        if problem is not None:
            if self.path.exists():
                logger.warning("re-exporting the ONNX embedding model %s: %s", self.path, problem)
            export_onnx(model, self.path, weights_sha256=weights_sha256)
            self.exported = True
            self._session = _session(self.path, threads=self.threads)
            self._check(reference)
        logger.info("ONNX Runtime embedder ready: %s, %d threads", self.path.name, self.threads)

    def embed(self, crops: Crops) -> Embeddings:
        """Embeddings of crops shaped [n, 3, 160, 160] (float32, fixed_image_standardization applied)."""
        batch = np.ascontiguousarray(crops, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (3, CROP_SIZE, CROP_SIZE):
            raise ValueError(f"crops must be shaped [n, 3, {CROP_SIZE}, {CROP_SIZE}], not {list(batch.shape)}")
        if len(batch) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        (output,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return l2_normalise(np.asarray(output, dtype=np.float32))

    def _check(self, reference: Callable[[], tuple[Crops, Embeddings]]) -> None:
        crops, expected = reference()
        try:
            actual = self.embed(crops)
        except Exception as error:  # noqa: BLE001 - a broken graph fails in many ways at run time
            raise OnnxModelError(f"{self.path} fails to run: {error}") from None
        cosine = float(np.min(np.sum(actual * expected, axis=1)))
        if not cosine >= PARITY_MIN_COSINE:  # also catches NaN
            raise OnnxModelError(
                f"{self.path} does not reproduce the torch model (cosine {cosine:.6f} < {PARITY_MIN_COSINE})"
            )


def _reference(model: torch.nn.Module) -> Callable[[], tuple[Crops, Embeddings]]:
    """The self-check input and the torch model's embeddings of it, computed once, on first use."""
    cached: list[tuple[Crops, Embeddings]] = []

    def compute() -> tuple[Crops, Embeddings]:
        if not cached:
            crops = _check_input()
            device = next(model.parameters()).device
            with torch.inference_mode():
                expected = model(crops.to(device)).float().cpu().numpy()
            cached.append((crops.numpy(), l2_normalise(expected)))
        return cached[0]

    return compute
