"""InceptionResnetV1 on ONNX Runtime: the CPU embedding path.

The loaded torch model (weights already verified and strictly loaded) is exported once to
`<cache_dir>/<weights sha256>.onnx`, with a dynamic batch axis, and reused by every later start
(see app.services.onnx_cache for how the cache is checked). Every session, fresh or cached, must
also reproduce the torch model's embeddings on a fixed input before it is used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
import torch

from app.services.onnx_cache import (
    ExportSpec,
    OnnxModelError,
    cache_problem,
    cached_session,
    default_threads,
    open_session,
    run_checked,
)

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 512
CROP_SIZE = 160
INPUT_NAME = "crops"
OUTPUT_NAME = "embeddings"
# Cosine similarity the ONNX model must reach against torch on the self-check input.
PARITY_MIN_COSINE = 0.9999
# The int8 model was measured against fp32 on real faces when it was made; on the (unfaced)
# self-check input this only catches a model quantized from other weights or broken.
INT8_SANITY_MIN_COSINE = 0.9

Embeddings = npt.NDArray[np.float32]
Crops = npt.NDArray[np.float32]
Precision = Literal["fp32", "int8"]


def cache_path(cache_dir: Path, weights_sha256: str) -> Path:
    return cache_dir / f"{weights_sha256.lower()}.onnx"


def int8_path(cache_dir: Path, weights_sha256: str) -> Path:
    return cache_dir / f"{weights_sha256.lower()}-int8.onnx"


def int8_problem(path: Path, *, weights_sha256: str) -> str | None:
    """Why the int8 model cannot be used, or None."""
    if not path.is_file():
        return f"{path} does not exist: make it with `facerec models quantize DIR` (a folder of face photos)"
    problem = cache_problem(path, key_sha256=weights_sha256)
    return None if problem is None else f"{path}: {problem}"


def _check_input() -> torch.Tensor:
    # Fixed, so that every start checks the same thing; shaped like standardised crops ([-1, 1]).
    generator = torch.Generator().manual_seed(20180402)
    return torch.rand((2, 3, CROP_SIZE, CROP_SIZE), generator=generator) * 2.0 - 1.0


def l2_normalise(rows: npt.NDArray[np.float32]) -> Embeddings:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


def export_spec() -> ExportSpec:
    return ExportSpec(
        what="the embedding model",
        example=(_check_input(),),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
    )


class OnnxEmbedder:
    """L2-normalised 512-d embeddings of standardised 160x160 crops, by ONNX Runtime on the CPU."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        weights_sha256: str,
        cache_dir: Path,
        threads: int = 0,
        precision: Precision = "fp32",
    ) -> None:
        """Use the cached export for these weights, or export now; check it against the torch model.

        With precision int8, the model `facerec models quantize` made is used; it is never made here.
        """
        self.path = cache_path(cache_dir, weights_sha256)
        self.precision = precision
        self.threads = threads if threads > 0 else default_threads()
        crops = _check_input()
        device = next(model.parameters()).device
        with torch.inference_mode():
            expected = l2_normalise(model(crops.to(device)).float().cpu().numpy())

        def check(session: ort.InferenceSession, path: Path, floor: float) -> None:
            actual = _embed(session, crops.numpy(), what=str(path))
            cosine = float(np.min(np.sum(actual * expected, axis=1)))
            if not cosine >= floor:  # also catches NaN
                raise OnnxModelError(f"{path} does not reproduce the torch model (cosine {cosine:.6f} < {floor})")

        if precision == "int8":
            self.path = int8_path(cache_dir, weights_sha256)
            problem = int8_problem(self.path, weights_sha256=weights_sha256)
            if problem is not None:
                raise OnnxModelError(problem)
            self._session = open_session(self.path, threads=self.threads)
            check(self._session, self.path, INT8_SANITY_MIN_COSINE)
            self.exported = False
        else:
            self._session, self.exported = cached_session(
                model,
                self.path,
                key_sha256=weights_sha256,
                spec=export_spec(),
                threads=self.threads,
                check=lambda session: check(session, self.path, PARITY_MIN_COSINE),
            )
        logger.info("ONNX Runtime embedder ready: %s (%s), %d threads", self.path.name, precision, self.threads)

    def embed(self, crops: Crops) -> Embeddings:
        """Embeddings of crops shaped [n, 3, 160, 160] (float32, fixed_image_standardization applied)."""
        batch = np.ascontiguousarray(crops, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (3, CROP_SIZE, CROP_SIZE):
            raise ValueError(f"crops must be shaped [n, 3, {CROP_SIZE}, {CROP_SIZE}], not {list(batch.shape)}")
        if len(batch) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        (output,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return l2_normalise(np.asarray(output, dtype=np.float32))


def _embed(session: ort.InferenceSession, crops: Crops, *, what: str) -> Embeddings:
    (output,) = run_checked(session, {INPUT_NAME: crops}, what=what)
    return l2_normalise(np.asarray(output, dtype=np.float32))
