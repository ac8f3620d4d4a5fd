"""The opt-in int8 embedder: calibrated on real face crops, checked against fp32, never used unasked.

The weights are untrained (see conftest), so what is tested is that int8 reproduces fp32, which
is all that can be tested here; recognition accuracy with the real weights is not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.engine.build import build_engine
from app.engine.engine import FaceEngine
from app.engine.onnx_embedder import cache_path, int8_path, int8_problem
from app.engine.onnx_runtime import OnnxModelError
from app.engine.quantize import MIN_COSINE_TO_FP32, calibration_crops, quantize_embedder
from app.errors import WeightsUnavailableError
from tests.engine.conftest import ANY_SIZE, engine_config, load_photo


def photos(faces_dir: Path, *, count: int) -> list[Path]:
    return sorted(faces_dir.glob("lfw_*/*.jpg"))[:count]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory, shared_cache_dir: Path, engine: FaceEngine) -> Path:
    """A copy of the session's ONNX cache, so the int8 model made here stays out of the other tests' way."""
    copy = tmp_path_factory.mktemp("quantize") / "onnx"
    shutil.copytree(shared_cache_dir, copy)
    return copy


@pytest.fixture(scope="module")
def fp32_engine(weights_file: tuple[Path, str], cache_dir: Path) -> FaceEngine:
    return build_engine(engine_config(weights_file, cache_dir=cache_dir))


@pytest.fixture(scope="module")
def crops(fp32_engine: FaceEngine, faces_dir: Path) -> np.ndarray:
    found, _ = calibration_crops(fp32_engine, photos=photos(faces_dir, count=48), limits=ANY_SIZE, max_faces=40)
    return found


def fp32_path(cache_dir: Path, weights_file: tuple[Path, str]) -> Path:
    return cache_path(cache_dir, weights_sha256=weights_file[1])


@pytest.fixture(scope="module")
def quantized(weights_file: tuple[Path, str], cache_dir: Path, crops: np.ndarray) -> Path:
    report = quantize_embedder(fp32_path(cache_dir, weights_file), weights_sha256=weights_file[1], crops=crops)
    return report.path


def test_calibration_crops_are_the_largest_face_of_each_photo_as_the_service_cuts_it(
    fp32_engine: FaceEngine, faces_dir: Path, crops: np.ndarray
) -> None:
    image = load_photo(faces_dir, str(photos(faces_dir, count=1)[0].relative_to(faces_dir)))

    assert crops.shape == (40, 3, 160, 160)
    assert np.array_equal(crops[0], fp32_engine.crops(image, faces=fp32_engine.detect(image)[:1])[0])


def test_quantize_writes_an_int8_model_that_reproduces_fp32_on_held_out_faces(
    weights_file: tuple[Path, str], cache_dir: Path, crops: np.ndarray
) -> None:
    report = quantize_embedder(fp32_path(cache_dir, weights_file), weights_sha256=weights_file[1], crops=crops)

    assert report.path == int8_path(cache_dir, weights_sha256=weights_file[1])
    assert (report.calibration_crops, report.checked_crops) == (30, 10)
    assert report.min_cosine >= MIN_COSINE_TO_FP32
    assert (
        int8_problem(report.path, weights_sha256=weights_file[1], fp32_path=fp32_path(cache_dir, weights_file)) is None
    )


def test_quantize_refuses_fewer_than_eight_faces(
    weights_file: tuple[Path, str], cache_dir: Path, crops: np.ndarray
) -> None:
    with pytest.raises(OnnxModelError, match="at least 8 face crops"):
        quantize_embedder(fp32_path(cache_dir, weights_file), weights_sha256=weights_file[1], crops=crops[:7])


def test_engine_with_int8_precision_embeds_like_fp32(
    weights_file: tuple[Path, str], cache_dir: Path, quantized: Path, fp32_engine: FaceEngine, crops: np.ndarray
) -> None:
    engine = build_engine(engine_config(weights_file, cache_dir=cache_dir, embedding_precision="int8"))

    int8_rows = engine.embed(crops)
    fp32_rows = fp32_engine.embed(crops)

    assert engine.description.embedder == "onnx int8"
    assert np.sum(int8_rows * fp32_rows, axis=1).min() >= MIN_COSINE_TO_FP32


def test_engine_with_int8_precision_refuses_to_start_without_a_quantized_model(
    weights_file: tuple[Path, str], tmp_path: Path
) -> None:
    config = engine_config(weights_file, cache_dir=tmp_path, embedding_precision="int8")

    with pytest.raises(WeightsUnavailableError, match="facerec models quantize"):
        build_engine(config)


def test_int8_precision_with_the_torch_backend_refuses_to_start(weights_file: tuple[Path, str]) -> None:
    config = engine_config(
        weights_file, cache_dir=Path("/nonexistent"), embedding_backend="torch", embedding_precision="int8"
    )

    with pytest.raises(WeightsUnavailableError, match="ONNX Runtime on the CPU only"):
        build_engine(config)


def test_a_corrupt_int8_model_is_refused(
    weights_file: tuple[Path, str], quantized: Path, cache_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / quantized.name
    shutil.copy(quantized, copy)
    shutil.copy(quantized.with_name(quantized.name + ".json"), tmp_path / (quantized.name + ".json"))
    copy.write_bytes(copy.read_bytes()[:-100])

    problem = int8_problem(copy, weights_sha256=weights_file[1], fp32_path=fp32_path(cache_dir, weights_file))

    assert problem is not None
    assert "does not match its manifest" in problem


def test_models_quantize_command_writes_the_int8_model(
    weights_file: tuple[Path, str], cache_dir: Path, faces_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo_dir = tmp_path / "photos"
    photo_dir.mkdir()
    for photo in photos(faces_dir, count=12):
        shutil.copy(photo, photo_dir / f"{photo.parent.name}-{photo.name}")
    model_dir = tmp_path / "models"
    shutil.copytree(cache_dir, model_dir / "onnx")  # reuse the fp32 export
    for name, value in {
        "FACEREC_WEIGHTS_PATH": str(weights_file[0]),
        "FACEREC_WEIGHTS_SHA256": weights_file[1],
        "FACEREC_MODEL_DIR": str(model_dir),
        "FACEREC_ALLOW_DOWNLOAD": "false",
    }.items():
        monkeypatch.setenv(name, value)

    assert main(["models", "quantize", str(photo_dir)]) == 0

    int8 = int8_path(model_dir / "onnx", weights_sha256=weights_file[1])
    assert (
        int8_problem(int8, weights_sha256=weights_file[1], fp32_path=fp32_path(model_dir / "onnx", weights_file))
        is None
    )


def test_models_quantize_command_refuses_a_missing_folder(tmp_path: Path) -> None:
    assert main(["models", "quantize", str(tmp_path / "absent")]) == 2
