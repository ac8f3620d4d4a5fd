"""Fixtures for the engine tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.engine import exporting
from app.engine.build import EngineConfig
from app.engine.decode import ImageLimits, decode_image
from app.engine.onnx_runtime import OnnxModelError

ANY_SIZE = ImageLimits(max_bytes=1 << 30, max_pixels=1 << 30, min_side=1)


def load_photo(faces_dir: Path, relative: str) -> Image.Image:
    return decode_image((faces_dir / relative).read_bytes(), limits=ANY_SIZE)


def engine_config(weights_file: tuple[Path, str], *, cache_dir: Path, **overrides: Any) -> EngineConfig:
    """The test weights on the CPU, exports cached in cache_dir, other fields as given."""
    values: dict[str, Any] = {
        "weights_path": weights_file[0],
        "weights_sha256": weights_file[1],
        "model_id": "test-untrained",
        "cache_dir": cache_dir,
        "device": "cpu",
        "detect_threads": 1,
        "embed_threads": 2,
    }
    values.update(overrides)
    return EngineConfig(**values)


@pytest.fixture(scope="session")
def shared_cache_dir(weights_file: tuple[Path, str]) -> Path:
    """The ONNX cache the service fixtures use too: exported once per session."""
    return weights_file[0].parent / "models" / "onnx"


@pytest.fixture
def failing_onnx_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ONNX export fails with "export failed for the test", and no cached model exists to fall back on."""

    def fail(*args: object, **kwargs: object) -> None:
        raise OnnxModelError("export failed for the test")

    monkeypatch.setattr(exporting, "_in_child", fail)  # where the child process would be started
