"""An int8 embedding model, calibrated on your own face photos: opt-in, measured against fp32.

Static quantization (ONNX Runtime, QDQ, int8 weights per channel, uint8 activations) runs the
embedder about 3x faster on CPUs with VNNI or AMX. Its error depends on the activation ranges it
was calibrated on, so it is calibrated on real face crops, cut from photos the user provides,
exactly as the service cuts them: `facerec models quantize DIR`. The result is written beside
the fp32 export as `<weights sha256>-int8.onnx` with a manifest that records how closely it
reproduced fp32 on those crops. The service uses it only with FACEREC_EMBEDDING_PRECISION=int8.

What cannot be checked here is recognition accuracy with the real weights: run your own
labelled pairs before relying on it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]
from onnxruntime.quantization import (  # type: ignore[import-untyped]
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

from app.engine.decode import ImageLimits, decode_image
from app.engine.engine import FaceEngine
from app.engine.export_cache import install, read_manifest, temp_beside
from app.engine.faces import Crops, l2_normalise, no_crops
from app.engine.onnx_embedder import INPUT_NAME, int8_path
from app.engine.onnx_runtime import OnnxModelError, open_session
from app.errors import FacerecError

logger = logging.getLogger(__name__)

# Smallest cosine similarity to fp32 accepted on the calibration crops' held-out part.
MIN_COSINE_TO_FP32 = 0.99


@dataclass(frozen=True)
class QuantizeReport:
    path: Path
    calibration_crops: int
    checked_crops: int
    min_cosine: float
    mean_cosine: float


class _Crops(CalibrationDataReader):  # type: ignore[misc]
    def __init__(self, crops: Crops) -> None:
        self._batches: Iterator[Crops] = iter(np.split(crops, len(crops)))

    def get_next(self) -> dict[str, Crops] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch)}


def calibration_crops(
    engine: FaceEngine, *, photos: Sequence[Path], limits: ImageLimits, max_faces: int
) -> tuple[Crops, int]:
    """The largest face of each photo, cut as the service cuts it, up to max_faces; and photos skipped."""
    crops: list[Crops] = []
    skipped = 0
    for photo in photos:
        if len(crops) >= max_faces:
            break
        try:
            image = decode_image(photo.read_bytes(), limits=limits)
        except (OSError, FacerecError):
            skipped += 1
            continue
        faces = engine.detect(image)
        if not faces:
            skipped += 1
            continue
        crops.append(engine.crops(image, faces=faces[:1]))
    if not crops:
        return no_crops(), skipped
    return np.concatenate(crops), skipped


def _embed(session: ort.InferenceSession, *, crops: Crops) -> Crops:
    (output,) = session.run(None, {INPUT_NAME: crops})
    return l2_normalise(np.asarray(output, dtype=np.float32))


def quantize_embedder(fp32_path: Path, *, weights_sha256: str, crops: Crops) -> QuantizeReport:
    """Calibrate on three quarters of the crops, check on the rest against fp32, write the model."""
    if len(crops) < 8:
        raise OnnxModelError(f"calibration needs at least 8 face crops, not {len(crops)}")
    calibration, held_out = crops[: len(crops) * 3 // 4], crops[len(crops) * 3 // 4 :]
    target = int8_path(fp32_path.parent, weights_sha256=weights_sha256)
    temp = temp_beside(target)
    try:
        quantize_static(
            str(fp32_path),
            str(temp),
            _Crops(calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
        cosines = np.sum(
            _embed(open_session(temp, threads=1), crops=held_out)
            * _embed(open_session(fp32_path, threads=1), crops=held_out),
            axis=1,
        )
        report = QuantizeReport(
            path=target,
            calibration_crops=len(calibration),
            checked_crops=len(held_out),
            min_cosine=float(np.min(cosines)),
            mean_cosine=float(np.mean(cosines)),
        )
        if not report.min_cosine >= MIN_COSINE_TO_FP32:
            raise OnnxModelError(
                f"the int8 model reproduces fp32 only to cosine {report.min_cosine:.4f} "
                f"(< {MIN_COSINE_TO_FP32}) on held-out faces; it was not saved"
            )
        install(
            temp,
            path=target,
            key_sha256=weights_sha256,
            reference=[],  # checked at start against the fp32 export's recorded outputs
            extra={
                "fp32_onnx_sha256": read_manifest(fp32_path)["onnx_sha256"],
                "calibration_crops": report.calibration_crops,
                "checked_crops": report.checked_crops,
                "min_cosine_to_fp32": report.min_cosine,
                "mean_cosine_to_fp32": report.mean_cosine,
            },
        )
    finally:
        temp.unlink(missing_ok=True)
    logger.info("wrote %s (cosine to fp32 on held-out faces: min %.4f)", target, report.min_cosine)
    return report
