"""InceptionResnetV1 on ONNX Runtime: the CPU embedder.

The fp32 model is exported once from the verified weights (app.engine.export) to
`<cache_dir>/<weights sha256>.onnx`, with a dynamic batch axis; the int8 model is what
`facerec models quantize` made from it. Opening either needs no torch: the session must
reproduce the outputs recorded in the fp32 manifest on the fixed check input before it is used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]

from app.engine.export_cache import cache_problem, read_manifest, reference_outputs
from app.engine.faces import CROP_SIZE, Crops, Embeddings, check_crops, l2_normalise, no_embeddings
from app.engine.onnx_runtime import OnnxModelError, check_input, open_session, run_checked

logger = logging.getLogger(__name__)

INPUT_NAME = "crops"
OUTPUT_NAME = "embeddings"
CHECK_SHAPE = (2, 3, CROP_SIZE, CROP_SIZE)
CHECK_SEED = 20180402
# Cosine similarity the fp32 ONNX model must reach against torch (at export) and its record (at start).
PARITY_MIN_COSINE = 0.9999
# The int8 model was measured against fp32 on real faces when it was made; on the (unfaced)
# check input this only catches a model quantized from other weights, or broken.
INT8_SANITY_MIN_COSINE = 0.9

Precision = Literal["fp32", "int8"]


def cache_path(cache_dir: Path, *, weights_sha256: str) -> Path:
    return cache_dir / f"{weights_sha256.lower()}.onnx"


def int8_path(cache_dir: Path, *, weights_sha256: str) -> Path:
    return cache_dir / f"{weights_sha256.lower()}-int8.onnx"


def int8_problem(path: Path, *, weights_sha256: str, fp32_path: Path) -> str | None:
    """Why the int8 model cannot be used, or None."""
    if not path.is_file():
        return f"{path} does not exist: make it with `facerec models quantize DIR` (a folder of face photos)"
    problem = cache_problem(path, key_sha256=weights_sha256, check_libraries=False)
    if problem is None and read_manifest(path).get("fp32_onnx_sha256") != read_manifest(fp32_path).get("onnx_sha256"):
        problem = "it was quantized from another fp32 export; run `facerec models quantize DIR` again"
    return None if problem is None else f"{path}: {problem}"


def min_cosine(expected: Embeddings, *, actual: Embeddings) -> float:
    """The smallest row-wise cosine similarity of two batches (NaN counts as -1)."""
    cosine = float(np.min(np.sum(l2_normalise(expected) * l2_normalise(actual), axis=1)))
    return -1.0 if np.isnan(cosine) else cosine


class OnnxEmbedder:
    """L2-normalised 512-d embeddings of standardised 160x160 crops, by ONNX Runtime on the CPU."""

    def __init__(self, session: ort.InferenceSession, *, path: Path, precision: Precision) -> None:
        self._session = session
        self.path = path
        self.precision = precision

    @property
    def backend(self) -> str:
        return f"onnx {self.precision}"

    def embed(self, crops: Crops) -> Embeddings:
        batch = check_crops(crops)
        if len(batch) == 0:
            return no_embeddings()
        (output,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return l2_normalise(np.asarray(output, dtype=np.float32))


def open_embedder(fp32_path: Path, *, precision: Precision, weights_sha256: str, threads: int) -> OnnxEmbedder:
    """The cached embedder of this precision, checked against the fp32 export's recorded outputs.

    The fp32 export must already be valid (cache_problem() is None); int8 is never made here.
    """
    path = fp32_path
    floor = PARITY_MIN_COSINE
    if precision == "int8":
        path = int8_path(fp32_path.parent, weights_sha256=weights_sha256)
        problem = int8_problem(path, weights_sha256=weights_sha256, fp32_path=fp32_path)
        if problem is not None:
            raise OnnxModelError(problem)
        floor = INT8_SANITY_MIN_COSINE
    session = open_session(path, threads=threads)
    (expected,) = reference_outputs(fp32_path)
    (actual,) = run_checked(session, inputs={INPUT_NAME: check_input(CHECK_SHAPE, seed=CHECK_SEED)}, what=str(path))
    cosine = min_cosine(expected, actual=actual)
    if not cosine >= floor:
        raise OnnxModelError(f"{path} does not reproduce its recorded embeddings (cosine {cosine:.6f} < {floor})")
    logger.info("ONNX Runtime embedder ready: %s (%s), %d threads", path.name, precision, threads)
    return OnnxEmbedder(session, path=path, precision=precision)
