"""The face engine: strict weight loading, real MTCNN detection on real photos, embedding shape and norm.

The embedder's weights are untrained (see conftest), so nothing here depends on what the
embeddings mean, only on their form; detection uses MTCNN's own bundled, trained weights.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from facenet_pytorch.models.mtcnn import fixed_image_standardization
from facenet_pytorch.models.utils.detect_face import extract_face
from PIL import Image

from app.engine.build import build_engine
from app.engine.engine import FaceEngine
from app.engine.export import load_embedder
from app.engine.faces import EMBEDDING_DIM
from app.errors import WeightsUnavailableError
from tests.engine.conftest import engine_config, load_photo

CPU = torch.device("cpu")
CONFIDENT = 0.9


@pytest.fixture(scope="module")
def release_state(weights_file: tuple[Path, str]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(weights_file[0], map_location="cpu", weights_only=True)
    return state


@pytest.fixture(scope="module")
def small_detect_engine(weights_file: tuple[Path, str], shared_cache_dir: Path) -> FaceEngine:
    """An engine that detects on images shrunk to 512 px, to see boxes mapped back to the original."""
    return build_engine(engine_config(weights_file, cache_dir=shared_cache_dir, detect_max_side=512))


def save_state(state: object, path: Path) -> Path:
    torch.save(state, path)
    return path


# --- load_embedder ------------------------------------------------------------------------------


def test_load_embedder_accepts_release_format_with_vggface2_classifier(weights_file: tuple[Path, str]) -> None:
    model = load_embedder(weights_file[0], device=CPU)

    assert model.logits.out_features == 8631
    assert not model.training


def test_load_embedder_accepts_state_dict_without_classifier(
    release_state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    without_logits = {key: value for key, value in release_state.items() if not key.startswith("logits.")}
    path = save_state(without_logits, tmp_path / "no-logits.pt")

    model = load_embedder(path, device=CPU)

    assert torch.equal(model.last_linear.weight, release_state["last_linear.weight"])


def test_load_embedder_rejects_state_dict_with_missing_key(
    release_state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    incomplete = {key: value for key, value in release_state.items() if key != "last_bn.running_var"}
    path = save_state(incomplete, tmp_path / "missing.pt")

    with pytest.raises(WeightsUnavailableError, match=r"last_bn\.running_var") as caught:
        load_embedder(path, device=CPU)

    assert str(path) in str(caught.value)


def test_load_embedder_rejects_state_dict_with_extra_key(
    release_state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    path = save_state({**release_state, "extra_head.weight": torch.zeros(4, 512)}, tmp_path / "extra.pt")

    with pytest.raises(WeightsUnavailableError, match=r"extra_head\.weight"):
        load_embedder(path, device=CPU)


def test_load_embedder_rejects_tensor_of_wrong_shape(release_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    path = save_state({**release_state, "last_linear.weight": torch.zeros(512, 1024)}, tmp_path / "shape.pt")

    with pytest.raises(WeightsUnavailableError, match=r"last_linear\.weight"):
        load_embedder(path, device=CPU)


def test_load_embedder_rejects_file_that_is_not_a_torch_pickle(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(b"<html>404 Not Found</html>")

    with pytest.raises(WeightsUnavailableError, match="not a torch state_dict") as caught:
        load_embedder(path, device=CPU)

    assert str(path) in str(caught.value)


@pytest.mark.parametrize("content", [torch.zeros(3), [1, 2, 3]], ids=["tensor", "list"])
def test_load_embedder_rejects_torch_file_that_holds_no_state_dict(content: object, tmp_path: Path) -> None:
    path = save_state(content, tmp_path / "not-a-dict.pt")

    with pytest.raises(WeightsUnavailableError, match="not a torch state_dict"):
        load_embedder(path, device=CPU)


# --- crops and embeddings ------------------------------------------------------------------------


def test_crops_equal_facenet_pytorchs_extract_face_and_standardisation(engine: FaceEngine, faces_dir: Path) -> None:
    image = load_photo(faces_dir, "_groups/2_two_people.jpg")
    faces = engine.detect(image)

    crops = engine.crops(image, faces=faces)

    expected = [
        fixed_image_standardization(extract_face(image, np.asarray(face.box), 160, 0)).numpy() for face in faces
    ]
    assert crops.shape == (len(faces), 3, 160, 160)
    assert crops.dtype == np.float32
    np.testing.assert_array_equal(crops, np.stack(expected))


def test_embed_returns_unit_float32_rows_of_512(engine: FaceEngine) -> None:
    crops = np.random.default_rng(3).uniform(-1, 1, size=(3, 3, 160, 160)).astype(np.float32)

    embeddings = engine.embed(crops)

    assert embeddings.dtype == np.float32
    assert embeddings.shape == (3, EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_embed_returns_one_unit_row_per_detected_face(engine: FaceEngine, faces_dir: Path) -> None:
    image = load_photo(faces_dir, "_groups/2_two_people.jpg")
    faces = engine.detect(image)

    embeddings = engine.embed(engine.crops(image, faces=faces))

    assert embeddings.dtype == np.float32
    assert embeddings.shape == (len(faces), EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_embed_without_faces_returns_empty_512_wide_array(engine: FaceEngine, faces_dir: Path) -> None:
    image = load_photo(faces_dir, "_noface/1_pilatus800.jpg")

    embeddings = engine.embed(engine.crops(image, faces=[]))

    assert embeddings.dtype == np.float32
    assert embeddings.shape == (0, EMBEDDING_DIM)


# --- detect -------------------------------------------------------------------------------------


def test_detect_returns_faces_largest_first_with_five_landmarks_and_probability(
    engine: FaceEngine, faces_dir: Path
) -> None:
    image = load_photo(faces_dir, "_groups/1_multiface.jpg")

    faces = engine.detect(image)

    assert len(faces) >= 2
    areas = [face.area for face in faces]
    assert areas == sorted(areas, reverse=True)
    for face in faces:
        assert len(face.landmarks) == 5
        assert 0.0 < face.probability <= 1.0
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= image.width
        assert 0 <= y1 < y2 <= image.height


def test_detect_reports_boxes_in_original_pixels_when_image_exceeds_detect_max_side(
    small_detect_engine: FaceEngine, faces_dir: Path
) -> None:
    original = load_photo(faces_dir, "eileen_collins/1.png")  # 512x512: detected at full size
    assert max(original.size) <= small_detect_engine.detect_max_side
    doubled = original.resize((original.width * 2, original.height * 2), Image.Resampling.BILINEAR)

    [reference] = small_detect_engine.detect(original)
    [scaled] = small_detect_engine.detect(doubled)

    # Detection ran on the same pixels (doubled then halved), so only resampling noise remains.
    assert [v / 2 for v in scaled.box] == pytest.approx(reference.box, abs=3.0)
    halved_landmarks = [coordinate / 2 for point in scaled.landmarks for coordinate in point]
    assert halved_landmarks == pytest.approx([c for point in reference.landmarks for c in point], abs=3.0)


def test_detect_finds_manifest_face_count_in_group_and_no_face_images(engine: FaceEngine, faces_dir: Path) -> None:
    with (faces_dir / "manifest.csv").open(newline="") as stream:
        expected = {
            row["path"]: int(row["faces_expected"])
            for row in csv.DictReader(stream)
            if row["path"].startswith(("_groups/", "_noface/"))
        }

    counted = {
        path: sum(face.probability >= CONFIDENT for face in engine.detect(load_photo(faces_dir, path)))
        for path in expected
    }

    assert len(expected) >= 10
    assert counted == expected


# --- start-up -------------------------------------------------------------------------------------

NO_TORCH_SCRIPT = """
import sys
from pathlib import Path
from app.engine.build import EngineConfig, build_engine
from app.engine.exporting import export_count, export_processes
engine = build_engine(EngineConfig(
    weights_path=Path(sys.argv[1]), weights_sha256=sys.argv[2], model_id="t", cache_dir=Path(sys.argv[3]), device="cpu"
))
engine.probe()
described = engine.description
print(described.detector, described.embedder, "torch" in sys.modules, "facenet_pytorch" in sys.modules)
print("exports", export_count(), "children", export_processes())
"""


def test_a_start_that_finds_valid_exports_imports_no_torch(
    engine: FaceEngine, weights_file: tuple[Path, str], shared_cache_dir: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH_SCRIPT, str(weights_file[0]), weights_file[1], str(shared_cache_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["onnx", "onnx", "fp32", "False", "False", "exports", "0", "children", "0"]


def test_probe_runs_both_models_on_a_fixed_input(engine: FaceEngine) -> None:
    engine.probe()

    assert engine.description.as_dict() == {"device": "cpu", "detector": "onnx", "embedder": "onnx fp32"}


def test_a_start_that_must_export_makes_both_exports_in_one_child_without_importing_torch_itself(
    weights_file: tuple[Path, str], tmp_path: Path
) -> None:
    cache_dir = tmp_path / "onnx"
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH_SCRIPT, str(weights_file[0]), weights_file[1], str(cache_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    # MTCNN's nets and the embedder: two exports, one interpreter importing torch for both
    assert result.stdout.split() == ["onnx", "onnx", "fp32", "False", "False", "exports", "2", "children", "1"]
    assert len(list(cache_dir.glob("*.onnx"))) == 4  # the embedder and MTCNN's three nets, made by the child
