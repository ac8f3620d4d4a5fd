"""The ONNX Runtime embedder: same embeddings as torch, an export cached by weights hash, corrupt caches rebuilt.

The weights are untrained (see conftest): parity with torch is what matters here, not meaning.
"""

from __future__ import annotations

import csv
import json
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from facenet_pytorch import InceptionResnetV1

from app.engine.build import build_engine, onnx_embedder
from app.engine.engine import FaceEngine
from app.engine.export import load_embedder
from app.engine.export_cache import cache_problem, read_manifest
from app.engine.exporting import export_count
from app.engine.faces import Crops, Embedder
from app.engine.onnx_embedder import cache_path
from app.errors import WeightsUnavailableError
from tests.engine.conftest import engine_config, load_photo

CPU = torch.device("cpu")
PARITY = 0.9999
OTHER_SHA256 = "0" * 64


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


@pytest.fixture(scope="module")
def torch_model(weights_file: tuple[Path, str]) -> InceptionResnetV1:
    return load_embedder(weights_file[0], device=CPU)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def embedder(weights_file: tuple[Path, str], cache_dir: Path) -> Embedder:
    """Exported once for the module (tens of seconds on two cores)."""
    return onnx_embedder(engine_config(weights_file, cache_dir=cache_dir))


@pytest.fixture(scope="module")
def real_crops(engine: FaceEngine, faces_dir: Path) -> Crops:
    """The face of one single-face photo of each of eight identities, as the service crops it."""
    with (faces_dir / "manifest.csv").open(newline="") as stream:
        rows = [row for row in csv.DictReader(stream) if row["faces_expected"] == "1"]
    first_photo_of = {row["identity"]: row["path"] for row in reversed(rows)}
    crops: list[Crops] = []
    for relative in sorted(first_photo_of.values()):
        photo = load_photo(faces_dir, relative)
        faces = engine.detect(photo)
        if faces:
            crops.append(engine.crops(photo, faces=faces[:1]))
        if len(crops) == 8:
            break
    assert len(crops) == 8, "fewer than eight identities with a detectable face"
    return np.concatenate(crops)


def torch_embeddings(model: InceptionResnetV1, crops: Crops) -> np.ndarray:
    with torch.inference_mode():
        return np.asarray(model(torch.from_numpy(crops)).numpy())


# --- parity -----------------------------------------------------------------------------------


def test_onnx_matches_torch_on_real_face_crops_one_at_a_time(
    embedder: Embedder, torch_model: InceptionResnetV1, real_crops: Crops
) -> None:
    expected = torch_embeddings(torch_model, real_crops)

    actual = np.concatenate([embedder.embed(real_crops[i : i + 1]) for i in range(len(real_crops))])

    assert cosines(actual, expected).min() >= PARITY


def test_onnx_matches_torch_on_real_face_crops_in_a_batch_of_8(
    embedder: Embedder, torch_model: InceptionResnetV1, real_crops: Crops
) -> None:
    expected = torch_embeddings(torch_model, real_crops)

    actual = embedder.embed(real_crops)

    assert actual.shape == (8, 512)
    assert cosines(actual, expected).min() >= PARITY


def test_embed_returns_unit_float32_rows(embedder: Embedder) -> None:
    crops = np.random.default_rng(0).uniform(-1, 1, size=(3, 3, 160, 160)).astype(np.float32)

    embeddings = embedder.embed(crops)

    assert embeddings.dtype == np.float32
    assert embeddings.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_embed_of_no_crops_is_empty_512_wide(embedder: Embedder) -> None:
    embeddings = embedder.embed(np.zeros((0, 3, 160, 160), dtype=np.float32))

    assert embeddings.shape == (0, 512)


def test_embed_rejects_crops_of_wrong_shape(embedder: Embedder) -> None:
    with pytest.raises(ValueError, match=r"\[n, 3, 160, 160\]"):
        embedder.embed(np.zeros((1, 3, 112, 112), dtype=np.float32))


# --- the cache --------------------------------------------------------------------------------


def test_the_manifest_records_the_parity_with_torch_measured_at_export(
    embedder: Embedder, weights_file: tuple[Path, str], cache_dir: Path
) -> None:
    manifest = read_manifest(cache_path(cache_dir, weights_sha256=weights_file[1]))

    assert manifest["parity"]["min_cosine"] >= PARITY
    assert manifest["parity"]["torch"] == torch.__version__
    assert manifest["libraries"]["torch"] == metadata.version("torch")
    assert len(manifest["reference_outputs"]) == 1


def test_second_start_reuses_the_cached_export(
    embedder: Embedder, weights_file: tuple[Path, str], cache_dir: Path
) -> None:
    path = cache_path(cache_dir, weights_sha256=weights_file[1])
    mtime = path.stat().st_mtime_ns
    exports = export_count()

    onnx_embedder(engine_config(weights_file, cache_dir=cache_dir))

    assert export_count() == exports
    assert path.stat().st_mtime_ns == mtime


def test_different_weights_hash_exports_to_a_different_file(
    embedder: Embedder, weights_file: tuple[Path, str], cache_dir: Path
) -> None:
    exports = export_count()

    onnx_embedder(engine_config(weights_file, cache_dir=cache_dir, weights_sha256=OTHER_SHA256))

    assert (cache_dir / f"{OTHER_SHA256}.onnx").is_file()
    assert export_count() == exports + 1
    assert cache_path(cache_dir, weights_sha256=weights_file[1]).is_file()


def test_truncated_cache_file_is_detected_and_rebuilt(
    embedder: Embedder, weights_file: tuple[Path, str], cache_dir: Path, tmp_path: Path
) -> None:
    original = cache_path(cache_dir, weights_sha256=weights_file[1])
    cached = tmp_path / original.name
    shutil.copy(original, cached)
    shutil.copy(original.with_name(original.name + ".json"), tmp_path)
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    exports = export_count()

    onnx_embedder(engine_config(weights_file, cache_dir=tmp_path))

    assert export_count() == exports + 1
    assert cache_problem(cached, key_sha256=weights_file[1]) is None
    assert cached.stat().st_size == original.stat().st_size


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("flip_a_byte", "does not match its manifest"),
        ("delete_manifest", "manifest is unreadable"),
        ("manifest_of_other_weights", "exported from other weights"),
        ("made_by_another_torch", "it was made with torch 0.0.1"),
    ],
)
def test_cache_problem_names_what_is_wrong_with_a_damaged_cache(
    embedder: Embedder, weights_file: tuple[Path, str], cache_dir: Path, tmp_path: Path, damage: str, problem: str
) -> None:
    original = cache_path(cache_dir, weights_sha256=weights_file[1])
    cached = tmp_path / original.name
    manifest = tmp_path / (original.name + ".json")
    shutil.copy(original, cached)
    shutil.copy(original.with_name(manifest.name), manifest)
    recorded = json.loads(manifest.read_text())
    if damage == "flip_a_byte":
        data = bytearray(cached.read_bytes())
        data[len(data) // 2] ^= 0xFF
        cached.write_bytes(bytes(data))
    elif damage == "delete_manifest":
        manifest.unlink()
    elif damage == "manifest_of_other_weights":
        manifest.write_text(json.dumps({**recorded, "weights_sha256": OTHER_SHA256}))
    else:
        manifest.write_text(json.dumps({**recorded, "libraries": {**recorded["libraries"], "torch": "0.0.1"}}))

    reason = cache_problem(cached, key_sha256=weights_file[1])

    assert reason is not None
    assert problem in reason


def test_cache_path_is_keyed_by_the_lowercased_weights_hash(tmp_path: Path) -> None:
    assert cache_path(tmp_path, weights_sha256="AB" * 32) == tmp_path / f"{'ab' * 32}.onnx"


# --- the engine -------------------------------------------------------------------------------


def test_engine_on_cpu_embeds_with_onnx_by_default_and_matches_the_torch_backend(
    weights_file: tuple[Path, str], real_crops: Crops, cache_dir: Path
) -> None:
    onnx_engine = build_engine(engine_config(weights_file, cache_dir=cache_dir))
    torch_engine = build_engine(engine_config(weights_file, cache_dir=cache_dir, embedding_backend="torch"))

    onnx_rows = onnx_engine.embed(real_crops)
    torch_rows = torch_engine.embed(real_crops)

    assert onnx_engine.description.embedder == "onnx fp32"
    assert torch_engine.description.embedder == "torch cpu"
    assert cosines(onnx_rows, torch_rows).min() >= PARITY


def test_engine_with_auto_backend_falls_back_to_torch_and_says_so_when_onnx_fails(
    weights_file: tuple[Path, str], tmp_path: Path, failing_onnx_export: None
) -> None:
    engine = build_engine(engine_config(weights_file, cache_dir=tmp_path))

    assert engine.description.embedder == "torch cpu"
    assert engine.description.fallback is not None
    assert "embedding on torch: export failed for the test" in engine.description.fallback
    assert engine.description.as_dict()["fallback"] == engine.description.fallback


def test_engine_with_onnx_backend_refuses_to_start_when_onnx_fails(
    weights_file: tuple[Path, str], tmp_path: Path, failing_onnx_export: None
) -> None:
    with pytest.raises(WeightsUnavailableError, match="ONNX embedding model failed: export failed for the test"):
        build_engine(engine_config(weights_file, cache_dir=tmp_path, embedding_backend="onnx"))
