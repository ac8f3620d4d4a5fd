"""MTCNN on ONNX Runtime finds exactly the faces facenet-pytorch's MTCNN finds, and is cached like the embedder.

MTCNN's weights ship in the facenet-pytorch wheel and are trained, so these are real detections.
Stated tolerance against torch, on every photo in ../shared/faces: the same number of faces, every
box corner and landmark within 0.01 px, every probability within 1e-4 (measured: 1.2e-4 px and
1e-6 at most; only float rounding differs).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import nms_numpy
from PIL import Image
from torch.nn.functional import interpolate

from app.errors import WeightsUnavailableError
from app.services.face_engine import Backend, EngineConfig, FaceEngine
from app.services.images import ImageLimits, decode_image, downscale
from app.services.onnx_cache import cache_problem, export_count
from app.services.onnx_detector import (
    Detections,
    OnnxMtcnn,
    area_crops,
    area_resize,
    integral_image,
    mtcnn_sha256,
    nms_min,
)

ANY_SIZE = ImageLimits(max_bytes=1 << 30, max_pixels=1 << 30, min_side=1)
MAX_PIXEL_DIFFERENCE = 0.01
MAX_PROBABILITY_DIFFERENCE = 1e-4


def mtcnn(min_face: int) -> MTCNN:
    return MTCNN(keep_all=True, min_face_size=min_face, device=torch.device("cpu")).eval()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mtcnn-onnx")


@pytest.fixture(scope="module")
def torch_detector() -> MTCNN:
    return mtcnn(40)


@pytest.fixture(scope="module")
def detector(torch_detector: MTCNN, cache_dir: Path) -> OnnxMtcnn:
    """Exported once for the module (about 12 s on two cores)."""
    return OnnxMtcnn(torch_detector, cache_dir=cache_dir, threads=1)


def torch_detections(detector: MTCNN, image: Image.Image) -> Detections:
    with torch.inference_mode():
        boxes, probabilities, landmarks = detector.detect(image, landmarks=True)
    if boxes is None:
        return Detections.none()
    return Detections(
        boxes=np.asarray(boxes, np.float32),
        probabilities=np.asarray(probabilities, np.float32),
        landmarks=np.asarray(landmarks, np.float32),
    )


def largest_first(found: Detections) -> Detections:
    """MTCNN.detect(select_largest=True) order, which detect_face's order is not."""
    area = (found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1])
    order = np.argsort(area)[::-1]
    return Detections(found.boxes[order], found.probabilities[order], found.landmarks[order])


def differences(photo: str, expected: Detections, actual: Detections) -> list[str]:
    if len(expected.boxes) != len(actual.boxes):
        return [f"{photo}: torch found {len(expected.boxes)} faces, ONNX {len(actual.boxes)}"]
    if len(expected.boxes) == 0:
        return []
    actual = largest_first(actual)
    problems = []
    pixels = max(np.abs(expected.boxes - actual.boxes).max(), np.abs(expected.landmarks - actual.landmarks).max())
    if pixels > MAX_PIXEL_DIFFERENCE:
        problems.append(f"{photo}: boxes or landmarks differ by {pixels:.4f} px")
    probability = np.abs(expected.probabilities - actual.probabilities).max()
    if probability > MAX_PROBABILITY_DIFFERENCE:
        problems.append(f"{photo}: probabilities differ by {probability:.2e}")
    return problems


def labelled_photos(faces_dir: Path) -> list[str]:
    with (faces_dir / "manifest.csv").open(newline="") as stream:
        return [row["path"] for row in csv.DictReader(stream)]


# --- the same detector ------------------------------------------------------------------------


def test_finds_the_same_faces_as_facenet_pytorch_on_every_labelled_photo(
    detector: OnnxMtcnn, torch_detector: MTCNN, faces_dir: Path
) -> None:
    photos = labelled_photos(faces_dir)
    problems: list[str] = []
    faces = 0

    for photo in photos:
        image = decode_image((faces_dir / photo).read_bytes(), limits=ANY_SIZE)
        small, _ = downscale(image, max_side=640)  # as the engine detects, by default
        expected = torch_detections(torch_detector, small)
        faces += len(expected.boxes)
        problems += differences(photo, expected, detector.detect(small))

    assert len(photos) >= 200
    assert faces >= 200
    assert problems == []


def test_finds_the_same_small_faces_with_a_20_px_minimum_on_group_photos(cache_dir: Path, faces_dir: Path) -> None:
    reference = mtcnn(20)
    onnx = OnnxMtcnn(reference, cache_dir=cache_dir, threads=1)
    photos = [photo for photo in labelled_photos(faces_dir) if photo.startswith("_groups/")]
    problems: list[str] = []

    for photo in photos:
        image, _ = downscale(decode_image((faces_dir / photo).read_bytes(), limits=ANY_SIZE), max_side=800)
        problems += differences(photo, torch_detections(reference, image), onnx.detect(image))

    assert len(photos) >= 5
    assert problems == []


def test_image_without_faces_gives_no_detections(detector: OnnxMtcnn) -> None:
    found = detector.detect(Image.new("RGB", (300, 200), (128, 128, 128)))

    assert found.boxes.shape == (0, 4)
    assert found.probabilities.shape == (0,)
    assert found.landmarks.shape == (0, 5, 2)


def test_image_smaller_than_the_minimum_face_gives_no_detections(detector: OnnxMtcnn) -> None:
    assert len(detector.detect(Image.new("RGB", (30, 30), (200, 150, 120))).boxes) == 0


def test_non_rgb_images_are_detected_as_rgb(detector: OnnxMtcnn, faces_dir: Path) -> None:
    image = decode_image((faces_dir / "barack_obama/4.jpg").read_bytes(), limits=ANY_SIZE)
    small, _ = downscale(image, max_side=640)

    rgba = detector.detect(small.convert("RGBA"))
    rgb = detector.detect(small)

    assert len(rgb.boxes) >= 1
    assert np.array_equal(rgba.boxes, rgb.boxes)


# --- the pieces, against the torch and torchvision code they replace --------------------------


@pytest.mark.parametrize(("height", "width", "out_height", "out_width"), [(97, 131, 59, 79), (40, 30, 13, 12)])
def test_area_resize_equals_torch_area_interpolation(height: int, width: int, out_height: int, out_width: int) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    expected = interpolate(
        torch.from_numpy(pixels).permute(2, 0, 1)[None].float(), size=(out_height, out_width), mode="area"
    )[0].permute(1, 2, 0)

    actual = area_resize(integral_image(pixels), out_height, out_width)

    assert actual.shape == (out_height, out_width, 3)
    assert np.abs(actual - expected.numpy()).max() < 1e-3


def test_area_crops_equal_torch_area_interpolation_of_each_region() -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    regions = np.array([[0, 0, 120, 90], [10, 5, 30, 41], [100, 80, 20, 10], [3, 7, 1, 1]])  # top, left, h, w
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()

    crops = area_crops(integral_image(pixels), regions[:, 0], regions[:, 1], regions[:, 2], regions[:, 3], 24)

    for crop, (top, left, height, width) in zip(crops, regions, strict=True):
        region = image[:, :, top : top + height, left : left + width]
        expected = interpolate(region, size=(24, 24), mode="area")[0].permute(1, 2, 0).numpy()
        assert np.abs(crop - expected).max() < 1e-3


def test_area_resize_of_windows_too_large_for_float32_sums_stays_exact() -> None:
    # 300x300-pixel windows of 255 sum to more than 2**24, past float32's exact integers.
    pixels = np.full((600, 600, 3), 255, dtype=np.uint8)
    pixels[0, 0] = 254

    resized = area_resize(integral_image(pixels), 2, 2)

    assert resized.dtype == np.float32
    assert resized[0, 0, 0] == np.float32((255 * 90_000 - 1) / 90_000)
    assert resized[1, 1, 0] == 255.0


def random_boxes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 200, (count, 2)).astype(np.float32)
    sizes = rng.uniform(5, 60, (count, 2)).astype(np.float32)
    return np.concatenate([corners, corners + sizes], axis=1), rng.uniform(0, 1, count).astype(np.float32)


def test_nms_min_keeps_what_facenet_nms_numpy_keeps() -> None:
    boxes, scores = random_boxes(300, seed=4)

    expected = nms_numpy(boxes, scores, 0.7, "Min")

    assert nms_min(boxes, scores, 0.7).tolist() == expected.tolist()


# --- the cache ----------------------------------------------------------------------------------


def test_second_construction_reuses_the_cached_exports(detector: OnnxMtcnn, cache_dir: Path) -> None:
    exports = export_count()

    again = OnnxMtcnn(mtcnn(40), cache_dir=cache_dir, threads=1)

    assert not again.exported
    assert export_count() == exports
    assert again.paths == detector.paths


def test_exports_are_keyed_by_the_sha256_of_the_three_nets(detector: OnnxMtcnn, torch_detector: MTCNN) -> None:
    key = mtcnn_sha256(torch_detector)
    changed = mtcnn(40)
    with torch.no_grad():
        changed.onet.dense5.bias.add_(1.0)

    assert mtcnn_sha256(changed) != key
    for name, path in detector.paths.items():
        assert path.name == f"mtcnn-{key}-{name}.onnx"
        assert cache_problem(path, key_sha256=key) is None


def test_a_corrupt_cached_net_is_exported_again(detector: OnnxMtcnn, torch_detector: MTCNN, tmp_path: Path) -> None:
    for path in detector.paths.values():
        shutil.copy(path, tmp_path / path.name)
        shutil.copy(path.with_name(path.name + ".json"), tmp_path / (path.name + ".json"))
    pnet = tmp_path / detector.paths["pnet"].name
    data = bytearray(pnet.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pnet.write_bytes(bytes(data))
    exports = export_count()

    rebuilt = OnnxMtcnn(torch_detector, cache_dir=tmp_path, threads=1)

    assert rebuilt.exported
    assert export_count() == exports + 1  # PNet only
    assert pnet.read_bytes() == detector.paths["pnet"].read_bytes()


# --- the engine ---------------------------------------------------------------------------------


def engine_config(weights_file: tuple[Path, str], cache_dir: Path, detector_backend: Backend = "auto") -> EngineConfig:
    return EngineConfig(
        weights_path=weights_file[0],
        model_id="test-untrained",
        device="cpu",
        embedding_backend="torch",
        detector_backend=detector_backend,
        onnx_cache_dir=cache_dir,
    )


def test_engine_on_cpu_detects_with_onnx_by_default_and_finds_what_torch_finds(
    weights_file: tuple[Path, str], cache_dir: Path, faces_dir: Path
) -> None:
    onnx_engine = FaceEngine(engine_config(weights_file, cache_dir))
    torch_engine = FaceEngine(engine_config(weights_file, cache_dir, detector_backend="torch"))
    image = decode_image((faces_dir / "_groups/1_multiface.jpg").read_bytes(), limits=ANY_SIZE)

    onnx_faces = onnx_engine.detect(image)
    torch_faces = torch_engine.detect(image)

    assert onnx_engine.detector_backend == "onnx"
    assert torch_engine.detector_backend == "torch"
    assert len(onnx_faces) == len(torch_faces) >= 2
    for mine, theirs in zip(onnx_faces, torch_faces, strict=True):
        assert mine.box == pytest.approx(theirs.box, abs=0.05)
        assert mine.probability == pytest.approx(theirs.probability, abs=1e-4)


def test_engine_with_auto_backend_detects_with_torch_when_onnx_fails(
    weights_file: tuple[Path, str], tmp_path: Path, failing_onnx_export: None
) -> None:
    engine = FaceEngine(engine_config(weights_file, tmp_path))

    assert engine.detector_backend == "torch"


def test_engine_with_onnx_detector_backend_refuses_to_start_when_onnx_fails(
    weights_file: tuple[Path, str], tmp_path: Path, failing_onnx_export: None
) -> None:
    with pytest.raises(WeightsUnavailableError, match="ONNX detection model failed: export failed for the test"):
        FaceEngine(engine_config(weights_file, tmp_path, detector_backend="onnx"))
