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
import torchvision
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import nms_numpy
from PIL import Image
from torch.nn.functional import interpolate

from app.engine import mtcnn as onnx_mtcnn
from app.engine.boxes import nms_min, nms_union
from app.engine.build import onnx_detector
from app.engine.crops import downscale
from app.engine.export_cache import cache_problem
from app.engine.exporting import export_count
from app.engine.mtcnn import Detections, OnnxMtcnn, export_paths, mtcnn_sha256
from app.engine.resample import area_crops, area_resize, integral_image
from tests.engine.conftest import load_photo

MAX_PIXEL_DIFFERENCE = 0.01
MAX_PROBABILITY_DIFFERENCE = 1e-4


def mtcnn(min_face: int) -> MTCNN:
    return MTCNN(keep_all=True, min_face_size=min_face, device=torch.device("cpu")).eval()


@pytest.fixture(scope="module")
def torch_detector() -> MTCNN:
    return mtcnn(40)


@pytest.fixture(scope="module")
def detector(weights_file: tuple[Path, str], shared_cache_dir: Path) -> OnnxMtcnn:
    return onnx_detector(cache_dir=shared_cache_dir, threads=1, min_face_px=40)


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


def differences(photo: str, *, expected: Detections, actual: Detections) -> list[str]:
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
        small, _ = downscale(load_photo(faces_dir, photo), max_side=640)
        expected = torch_detections(torch_detector, small)
        faces += len(expected.boxes)
        problems += differences(photo, expected=expected, actual=detector.detections(small))

    assert len(photos) >= 200
    assert faces >= 200
    assert problems == []


def test_finds_the_same_small_faces_with_a_20_px_minimum_on_group_photos(
    weights_file: tuple[Path, str], shared_cache_dir: Path, faces_dir: Path
) -> None:
    reference = mtcnn(20)
    onnx = onnx_detector(cache_dir=shared_cache_dir, threads=1, min_face_px=20)
    photos = [photo for photo in labelled_photos(faces_dir) if photo.startswith("_groups/")]
    problems: list[str] = []

    for photo in photos:
        image, _ = downscale(load_photo(faces_dir, photo), max_side=800)
        problems += differences(photo, expected=torch_detections(reference, image), actual=onnx.detections(image))

    assert len(photos) >= 5
    assert problems == []


def test_image_without_faces_gives_no_detections(detector: OnnxMtcnn) -> None:
    found = detector.detections(Image.new("RGB", (300, 200), (128, 128, 128)))

    assert found.boxes.shape == (0, 4)
    assert found.probabilities.shape == (0,)
    assert found.landmarks.shape == (0, 5, 2)


def test_image_smaller_than_the_minimum_face_gives_no_detections(detector: OnnxMtcnn) -> None:
    assert detector.detect(Image.new("RGB", (30, 30), (200, 150, 120))) == []


def test_non_rgb_images_are_detected_as_rgb(detector: OnnxMtcnn, faces_dir: Path) -> None:
    small, _ = downscale(load_photo(faces_dir, "barack_obama/4.jpg"), max_side=640)

    rgba = detector.detections(small.convert("RGBA"))
    rgb = detector.detections(small)

    assert len(rgb.boxes) >= 1
    assert np.array_equal(rgba.boxes, rgb.boxes)


def test_pyramid_settings_are_facenet_pytorchs_own() -> None:
    reference = MTCNN()

    assert tuple(reference.thresholds) == onnx_mtcnn.THRESHOLDS
    assert reference.factor == onnx_mtcnn.FACTOR


# --- the pieces, against the torch and torchvision code they replace --------------------------


@pytest.mark.parametrize(("height", "width", "out_height", "out_width"), [(97, 131, 59, 79), (40, 30, 13, 12)])
def test_area_resize_equals_torch_area_interpolation(height: int, width: int, out_height: int, out_width: int) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    expected = interpolate(
        torch.from_numpy(pixels).permute(2, 0, 1)[None].float(), size=(out_height, out_width), mode="area"
    )[0].permute(1, 2, 0)

    actual = area_resize(integral_image(pixels), height=out_height, width=out_width)

    assert actual.shape == (out_height, out_width, 3)
    assert np.abs(actual - expected.numpy()).max() < 1e-3


def test_area_crops_equal_torch_area_interpolation_of_each_region() -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    regions = np.array([[0, 0, 120, 90], [10, 5, 30, 41], [100, 80, 20, 10], [3, 7, 1, 1]])  # top, left, h, w
    image = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()

    crops = area_crops(
        integral_image(pixels),
        top=regions[:, 0],
        left=regions[:, 1],
        height=regions[:, 2],
        width=regions[:, 3],
        size=24,
    )

    for crop, (top, left, height, width) in zip(crops, regions, strict=True):
        region = image[:, :, top : top + height, left : left + width]
        expected = interpolate(region, size=(24, 24), mode="area")[0].permute(1, 2, 0).numpy()
        assert np.abs(crop - expected).max() < 1e-3


def test_area_resize_of_windows_too_large_for_float32_sums_stays_exact() -> None:
    # 300x300-pixel windows of 255 sum to more than 2**24, past float32's exact integers.
    pixels = np.full((600, 600, 3), 255, dtype=np.uint8)
    pixels[0, 0] = 254

    resized = area_resize(integral_image(pixels), height=2, width=2)

    assert resized.dtype == np.float32
    assert resized[0, 0, 0] == np.float32((255 * 90_000 - 1) / 90_000)
    assert resized[1, 1, 0] == 255.0


def random_boxes(count: int, *, seed: int, ties: bool = False) -> np.ndarray:
    """Rows of (x1, y1, x2, y2, score)."""
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 200, (count, 2)).astype(np.float32)
    sizes = rng.uniform(5, 60, (count, 2)).astype(np.float32)
    scores = rng.uniform(0, 1, count).astype(np.float32)
    if ties:
        scores = np.round(scores, 1)
    return np.concatenate([corners, corners + sizes, scores[:, None]], axis=1)


def test_nms_min_keeps_what_facenet_nms_numpy_keeps() -> None:
    boxes = random_boxes(300, seed=4)

    expected = nms_numpy(boxes[:, :4], boxes[:, 4], 0.7, "Min")

    assert nms_min(boxes, threshold=0.7).tolist() == expected.tolist()


@pytest.mark.parametrize(("seed", "threshold", "ties"), [(5, 0.5, False), (6, 0.7, False), (7, 0.5, True)])
def test_nms_union_keeps_what_torchvision_nms_keeps_in_the_same_order(seed: int, threshold: float, ties: bool) -> None:
    boxes = random_boxes(400, seed=seed, ties=ties)

    expected = torchvision.ops.nms(torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]), threshold)

    assert nms_union(boxes, threshold=threshold).tolist() == expected.tolist()


# --- the cache ----------------------------------------------------------------------------------


def test_a_second_start_reuses_the_cached_exports(
    detector: OnnxMtcnn, weights_file: tuple[Path, str], shared_cache_dir: Path
) -> None:
    exports = export_count()

    onnx_detector(cache_dir=shared_cache_dir, threads=1, min_face_px=40)

    assert export_count() == exports


def test_exports_are_keyed_by_the_sha256_of_the_three_weight_files(
    detector: OnnxMtcnn, shared_cache_dir: Path, tmp_path: Path
) -> None:
    key = mtcnn_sha256()
    changed = tmp_path / "data"
    shutil.copytree(onnx_mtcnn.weights_dir(), changed)
    onet = changed / "onet.pt"
    data = bytearray(onet.read_bytes())
    data[-1] ^= 0x01
    onet.write_bytes(bytes(data))

    assert mtcnn_sha256(changed) != key
    for name, path in export_paths(shared_cache_dir, key=key).items():
        assert path.name == f"mtcnn-{key}-{name}.onnx"
        assert cache_problem(path, key_sha256=key) is None


def test_a_corrupt_cached_net_is_exported_again(
    detector: OnnxMtcnn, weights_file: tuple[Path, str], shared_cache_dir: Path, tmp_path: Path
) -> None:
    paths = export_paths(shared_cache_dir, key=mtcnn_sha256())
    for path in paths.values():
        shutil.copy(path, tmp_path / path.name)
        shutil.copy(path.with_name(path.name + ".json"), tmp_path / (path.name + ".json"))
    pnet = tmp_path / paths["pnet"].name
    data = bytearray(pnet.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pnet.write_bytes(bytes(data))
    exports = export_count()

    onnx_detector(cache_dir=tmp_path, threads=1, min_face_px=40)

    assert export_count() > exports
    assert cache_problem(pnet, key_sha256=mtcnn_sha256()) is None


def test_detector_sessions_keep_no_memory_arena_as_their_input_shapes_change_every_call(detector: OnnxMtcnn) -> None:
    sessions = detector._sessions.values()

    assert sessions
    assert all(not session.get_session_options().enable_cpu_mem_arena for session in sessions)
