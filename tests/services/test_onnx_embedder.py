"""The ONNX Runtime embedder: same embeddings as torch, an export cached by weights hash, corrupt caches rebuilt.

The weights are untrained (see conftest): parity with torch is what matters here, not meaning.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from facenet_pytorch import InceptionResnetV1

from app.errors import WeightsUnavailableError
from app.services.face_engine import EngineConfig, FaceEngine, face_crops, load_embedder
from app.services.images import ImageLimits, decode_image
from app.services.onnx_cache import cache_problem, export_count
from app.services.onnx_embedder import OnnxEmbedder, cache_path

CPU = torch.device("cpu")
ANY_SIZE = ImageLimits(max_bytes=1 << 30, max_pixels=1 << 30, min_side=1)
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
def embedder(torch_model: InceptionResnetV1, weights_file: tuple[Path, str], cache_dir: Path) -> OnnxEmbedder:
    """Exported once for the module (tens of seconds on two cores)."""
    return OnnxEmbedder(torch_model, weights_sha256=weights_file[1], cache_dir=cache_dir, threads=2)


@pytest.fixture(scope="module")
def torch_engine(weights_file: tuple[Path, str]) -> FaceEngine:
    return FaceEngine(
        EngineConfig(weights_path=weights_file[0], model_id="test-untrained", device="cpu", embedding_backend="torch")
    )


@pytest.fixture(scope="module")
def real_crops(torch_engine: FaceEngine, faces_dir: Path) -> torch.Tensor:
    """The face of one single-face photo of each of eight identities, as the service crops it."""
    with (faces_dir / "manifest.csv").open(newline="") as stream:
        rows = [row for row in csv.DictReader(stream) if row["faces_expected"] == "1"]
    first_photo_of = {row["identity"]: row["path"] for row in reversed(rows)}
    crops: list[torch.Tensor] = []
    for relative in sorted(first_photo_of.values()):
        photo = decode_image((faces_dir / relative).read_bytes(), limits=ANY_SIZE)
        faces = torch_engine.detect(photo)
        if faces:
            crops.append(face_crops(photo, faces[:1])[0])
        if len(crops) == 8:
            break
    assert len(crops) == 8, "fewer than eight identities with a detectable face"
    return torch.stack(crops)


def torch_embeddings(model: InceptionResnetV1, crops: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return np.asarray(model(crops).numpy())


# --- parity -----------------------------------------------------------------------------------


def test_onnx_matches_torch_on_real_face_crops_one_at_a_time(
    embedder: OnnxEmbedder, torch_model: InceptionResnetV1, real_crops: torch.Tensor
) -> None:
    expected = torch_embeddings(torch_model, real_crops)

    actual = np.concatenate([embedder.embed(real_crops[i : i + 1].numpy()) for i in range(len(real_crops))])

    assert cosines(actual, expected).min() >= PARITY


def test_onnx_matches_torch_on_real_face_crops_in_a_batch_of_8(
    embedder: OnnxEmbedder, torch_model: InceptionResnetV1, real_crops: torch.Tensor
) -> None:
    expected = torch_embeddings(torch_model, real_crops)

    actual = embedder.embed(real_crops.numpy())

    assert actual.shape == (8, 512)
    assert cosines(actual, expected).min() >= PARITY


def test_embed_returns_unit_float32_rows(embedder: OnnxEmbedder) -> None:
    crops = np.random.default_rng(0).uniform(-1, 1, size=(3, 3, 160, 160)).astype(np.float32)

    embeddings = embedder.embed(crops)

    assert embeddings.dtype == np.float32
    assert embeddings.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_embed_of_no_crops_is_empty_512_wide(embedder: OnnxEmbedder) -> None:
    embeddings = embedder.embed(np.zeros((0, 3, 160, 160), dtype=np.float32))

    assert embeddings.shape == (0, 512)


def test_embed_rejects_crops_of_wrong_shape(embedder: OnnxEmbedder) -> None:
    with pytest.raises(ValueError, match=r"\[n, 3, 160, 160\]"):
        embedder.embed(np.zeros((1, 3, 112, 112), dtype=np.float32))


# --- the cache --------------------------------------------------------------------------------


def test_second_construction_reuses_the_cached_export(
    embedder: OnnxEmbedder, torch_model: InceptionResnetV1, weights_file: tuple[Path, str], cache_dir: Path
) -> None:
    mtime = embedder.path.stat().st_mtime_ns
    exports = export_count()

    again = OnnxEmbedder(torch_model, weights_sha256=weights_file[1], cache_dir=cache_dir, threads=1)

    assert again.path == embedder.path == cache_dir / f"{weights_file[1]}.onnx"
    assert not again.exported
    assert export_count() == exports
    assert again.path.stat().st_mtime_ns == mtime


def test_different_weights_hash_exports_to_a_different_file(
    embedder: OnnxEmbedder, torch_model: InceptionResnetV1, cache_dir: Path
) -> None:
    exports = export_count()

    other = OnnxEmbedder(torch_model, weights_sha256=OTHER_SHA256, cache_dir=cache_dir, threads=1)

    assert other.path == cache_dir / f"{OTHER_SHA256}.onnx"
    assert other.path != embedder.path
    assert other.exported
    assert export_count() == exports + 1
    assert embedder.path.is_file()


def test_truncated_cache_file_is_detected_and_rebuilt(
    embedder: OnnxEmbedder, torch_model: InceptionResnetV1, weights_file: tuple[Path, str], tmp_path: Path
) -> None:
    cached = tmp_path / embedder.path.name
    shutil.copy(embedder.path, cached)
    shutil.copy(embedder.path.with_name(embedder.path.name + ".json"), tmp_path)
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    exports = export_count()

    rebuilt = OnnxEmbedder(torch_model, weights_sha256=weights_file[1], cache_dir=tmp_path, threads=1)

    assert rebuilt.exported
    assert export_count() == exports + 1
    assert cache_problem(cached, key_sha256=weights_file[1]) is None
    assert cached.stat().st_size == embedder.path.stat().st_size


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("flip_a_byte", "does not match its manifest"),
        ("delete_manifest", "manifest is unreadable"),
        ("manifest_of_other_weights", "exported from other weights"),
    ],
)
def test_cache_problem_names_what_is_wrong_with_a_damaged_cache(
    embedder: OnnxEmbedder, weights_file: tuple[Path, str], tmp_path: Path, damage: str, problem: str
) -> None:
    cached = tmp_path / embedder.path.name
    manifest = tmp_path / (embedder.path.name + ".json")
    shutil.copy(embedder.path, cached)
    shutil.copy(embedder.path.with_name(manifest.name), manifest)
    if damage == "flip_a_byte":
        data = bytearray(cached.read_bytes())
        data[len(data) // 2] ^= 0xFF
        cached.write_bytes(bytes(data))
    elif damage == "delete_manifest":
        manifest.unlink()
    else:
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "weights_sha256": OTHER_SHA256}))

    reason = cache_problem(cached, key_sha256=weights_file[1])

    assert reason is not None
    assert problem in reason


def test_cache_problem_is_none_for_an_intact_cache(embedder: OnnxEmbedder, weights_file: tuple[Path, str]) -> None:
    assert cache_problem(embedder.path, key_sha256=weights_file[1]) is None


def test_cache_path_is_keyed_by_the_lowercased_weights_hash(tmp_path: Path) -> None:
    assert cache_path(tmp_path, "AB" * 32) == tmp_path / f"{'ab' * 32}.onnx"


# --- the engine -------------------------------------------------------------------------------


def test_engine_on_cpu_embeds_with_onnx_by_default_and_matches_torch_engine(
    weights_file: tuple[Path, str], torch_engine: FaceEngine, real_crops: torch.Tensor, cache_dir: Path
) -> None:
    engine = FaceEngine(
        EngineConfig(weights_path=weights_file[0], model_id="test-untrained", device="cpu", onnx_cache_dir=cache_dir)
    )

    onnx_rows = engine.embed_crops(real_crops)
    torch_rows = torch_engine.embed_crops(real_crops)

    assert engine.embedding_backend == "onnx"
    assert torch_engine.embedding_backend == "torch"
    assert cosines(onnx_rows, torch_rows).min() >= PARITY


def test_engine_with_auto_backend_falls_back_to_torch_when_onnx_fails(
    weights_file: tuple[Path, str], tmp_path: Path, failing_onnx_export: None
) -> None:
    engine = FaceEngine(
        EngineConfig(weights_path=weights_file[0], model_id="test-untrained", device="cpu", onnx_cache_dir=tmp_path)
    )

    assert engine.embedding_backend == "torch"


def test_engine_with_onnx_backend_refuses_to_start_when_onnx_fails(
    weights_file: tuple[Path, str], tmp_path: Path, failing_onnx_export: None
) -> None:
    with pytest.raises(WeightsUnavailableError, match="ONNX embedding model failed: export failed for the test"):
        FaceEngine(
            EngineConfig(
                weights_path=weights_file[0],
                model_id="test-untrained",
                device="cpu",
                embedding_backend="onnx",
                onnx_cache_dir=tmp_path,
            )
        )
