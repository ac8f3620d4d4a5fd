"""InceptionResnetV1 on ONNX Runtime: the CPU embedding path.

The loaded torch model (weights already verified and strictly loaded) is exported once to
`<cache_dir>/<weights sha256>.onnx`, with a dynamic batch axis, and reused by every later start
(see app.services.onnx_cache for how the cache is checked). Every session, fresh or cached, must
also reproduce the torch model's embeddings on a fixed input before it is used.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
import torch

from app.services.onnx_cache import (
    ExportSpec,
    OnnxModelError,
    cached_session,
    default_threads,
    run_checked,
)

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 512
CROP_SIZE = 160
INPUT_NAME = "crops"
OUTPUT_NAME = "embeddings"
# Cosine similarity the ONNX model must reach against torch on the self-check input.
PARITY_MIN_COSINE = 0.9999

Embeddings = npt.NDArray[np.float32]
Crops = npt.NDArray[np.float32]


def cache_path(cache_dir: Path, weights_sha256: str) -> Path:
    return cache_dir / f"{weights_sha256.lower()}.onnx"


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
    ) -> None:
        """Use the cached export for these weights, or export now; check it against the torch model."""
        self.path = cache_path(cache_dir, weights_sha256)
        self.threads = threads if threads > 0 else default_threads()
        crops = _check_input()
        device = next(model.parameters()).device
        with torch.inference_mode():
            expected = l2_normalise(model(crops.to(device)).float().cpu().numpy())

        def check(session: ort.InferenceSession) -> None:
            actual = _embed(session, crops.numpy(), what=str(self.path))
            cosine = float(np.min(np.sum(actual * expected, axis=1)))
            if not cosine >= PARITY_MIN_COSINE:  # also catches NaN
                raise OnnxModelError(
                    f"{self.path} does not reproduce the torch model (cosine {cosine:.6f} < {PARITY_MIN_COSINE})"
                )

        self._session, self.exported = cached_session(
            model, self.path, key_sha256=weights_sha256, spec=export_spec(), threads=self.threads, check=check
        )
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


def _embed(session: ort.InferenceSession, crops: Crops, *, what: str) -> Embeddings:
    (output,) = run_checked(session, {INPUT_NAME: crops}, what=what)
    return l2_normalise(np.asarray(output, dtype=np.float32))
