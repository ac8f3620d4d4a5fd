"""Fixtures for the service tests."""

from __future__ import annotations

import pytest

from app.services import onnx_cache


@pytest.fixture
def failing_onnx_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ONNX export fails with "export failed for the test", and no cached model exists to fall back on."""

    def fail(*args: object, **kwargs: object) -> None:
        raise onnx_cache.OnnxModelError("export failed for the test")

    monkeypatch.setattr(onnx_cache, "export_model", fail)
