"""ONNX exports made in a child process, so that torch never becomes resident where ONNX Runtime serves.

An export needs torch (app.engine.export), and a module once imported stays: a service that
exported on its first start would carry torch's ~1 GB for as long as it ran. So each export runs
in a fresh interpreter (multiprocessing's spawn: no fork of a threaded process), which writes the
cache and exits; its exceptions are re-raised here. Costs a few seconds on the starts that export,
nothing on the others.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from app.engine.onnx_runtime import OnnxModelError

logger = logging.getLogger(__name__)

# Exports made by this process's children, for tests that must see a cache hit without timing it.
_export_count = 0
_export_count_lock = threading.Lock()


def export_count() -> int:
    return _export_count


def export_embedder(weights_path: Path, *, path: Path, weights_sha256: str) -> None:
    """app.engine.export.export_embedder, in a child process."""
    _in_child("export_embedder", weights_path, path=path, weights_sha256=weights_sha256)


def export_mtcnn(paths: dict[str, Path], *, key_sha256: str) -> None:
    """app.engine.export.export_mtcnn, in a child process."""
    _in_child("export_mtcnn", paths, key_sha256=key_sha256)


def _in_child(name: str, *args: Any, **kwargs: Any) -> None:
    global _export_count
    logger.info("exporting to ONNX in a child process (%s)", name)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            pool.submit(_run_export, name, *args, **kwargs).result()
        except BrokenProcessPool as error:
            raise OnnxModelError(f"the export process died before it finished ({name}): {error}") from None
    with _export_count_lock:
        _export_count += 1


def _run_export(name: str, *args: Any, **kwargs: Any) -> None:
    """In the child: import torch and the exporter, and run it."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from app.engine import export

    getattr(export, name)(*args, **kwargs)
