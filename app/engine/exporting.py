"""ONNX exports made in a child process, so that torch never becomes resident where ONNX Runtime serves.

An export needs torch (app.engine.export), and a module once imported stays: a service that
exported on its first start would carry torch's ~1 GB for as long as it ran. So each export runs
in a fresh interpreter (multiprocessing's spawn: no fork of a threaded process), which writes the
cache and exits; its exceptions are re-raised here. Exports made inside `one_child()` (an engine
build: MTCNN's nets, then the embedder) share one such interpreter, so torch is imported once.
Costs a few seconds on the starts that export, nothing on the others: the child is started at
the first export, not before.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from app.engine.onnx_runtime import OnnxModelError

logger = logging.getLogger(__name__)

# Exports made by this process's children, and the children that made them, for tests that must
# see a cache hit (or a shared child) without timing it.
_export_count = 0
_export_pids: set[int] = set()
_counts_lock = threading.Lock()


def export_count() -> int:
    return _export_count


def export_processes() -> int:
    """How many child processes have made this process's exports."""
    return len(_export_pids)


class _Child:
    """One spawned interpreter, started on first use and kept until closed."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def run(self, name: str, *args: Any, **kwargs: Any) -> int:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            pid: int = self._pool.submit(_run_export, name, *args, **kwargs).result()
        except BrokenProcessPool as error:
            self.close()  # a later export starts a new child
            raise OnnxModelError(f"the export process died before it finished ({name}): {error}") from None
        return pid

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


_shared_child: ContextVar[_Child | None] = ContextVar("facerec_export_child", default=None)


@contextmanager
def one_child() -> Iterator[None]:
    """The exports made inside share one child process (none is started if nothing is exported)."""
    child = _Child()
    token = _shared_child.set(child)
    try:
        yield
    finally:
        _shared_child.reset(token)
        child.close()


def export_embedder(weights_path: Path, *, path: Path, weights_sha256: str) -> None:
    """app.engine.export.export_embedder, in a child process."""
    _in_child("export_embedder", weights_path, path=path, weights_sha256=weights_sha256)


def export_mtcnn(paths: dict[str, Path], *, key_sha256: str) -> None:
    """app.engine.export.export_mtcnn, in a child process."""
    _in_child("export_mtcnn", paths, key_sha256=key_sha256)


def _in_child(name: str, *args: Any, **kwargs: Any) -> None:
    global _export_count
    logger.info("exporting to ONNX in a child process (%s)", name)
    shared = _shared_child.get()
    if shared is not None:
        pid = shared.run(name, *args, **kwargs)
    else:
        own = _Child()
        try:
            pid = own.run(name, *args, **kwargs)
        finally:
            own.close()
    with _counts_lock:
        _export_count += 1
        _export_pids.add(pid)


def _run_export(name: str, *args: Any, **kwargs: Any) -> int:
    """In the child: import torch and the exporter, and run it; returns the child's pid."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from app.engine import export

    getattr(export, name)(*args, **kwargs)
    return os.getpid()
