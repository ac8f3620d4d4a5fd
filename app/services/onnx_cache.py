"""Models exported from torch to ONNX once, cached on disk, and checked before they are run.

A model is exported to `<name>.onnx` through a temporary file renamed into place. Beside it,
`<name>.onnx.json` records the key of what was exported (the weights' SHA-256) and the ONNX
file's own SHA-256: a cached file that does not match it (truncated, overwritten, half-copied,
exported from other weights) is exported again, never run. Every session, fresh or cached, must
also pass the caller's check (reproduce torch on a fixed input) before it is used.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort  # type: ignore[import-untyped]
import torch

from app.services.weights import sha256_of

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1

# Exports per process, for tests that must see a cache hit without timing it.
_export_count = 0
_export_count_lock = threading.Lock()


class OnnxModelError(Exception):
    """The ONNX model could not be exported, loaded, or does not reproduce the torch model."""


@dataclass(frozen=True)
class ExportSpec:
    """How one torch module is exported: an example input, names, and which axes are dynamic."""

    what: str  # for messages: "the embedding model", "MTCNN's PNet"
    example: tuple[torch.Tensor, ...]
    input_names: Sequence[str]
    output_names: Sequence[str]
    dynamic_shapes: tuple[dict[int, Any], ...]


def export_count() -> int:
    return _export_count


def manifest_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def temp_beside(path: Path) -> Path:
    """An empty temporary file in path's folder, to write a model into before install()."""
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(descriptor)
    return Path(temp_name)


def install(temp: Path, path: Path, *, key_sha256: str, extra: dict[str, Any]) -> None:
    """Move a finished model from temp to path, with the manifest cache_problem() checks."""
    manifest = {
        "format": CACHE_FORMAT,
        "weights_sha256": key_sha256.lower(),
        "onnx_sha256": sha256_of(temp),
        **extra,
    }
    temp.chmod(0o644)  # mkstemp makes it owner-only; the service may run as another user
    manifest_temp = temp.with_suffix(".json.tmp")
    try:
        manifest_temp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(temp, path)
        os.replace(manifest_temp, manifest_path(path))
    finally:
        manifest_temp.unlink(missing_ok=True)


def export_model(model: torch.nn.Module, path: Path, *, key_sha256: str, spec: ExportSpec) -> None:
    """Export the model to path through a temporary file renamed into place, with its manifest."""
    global _export_count
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu_model = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()
    temp = temp_beside(path)
    try:
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                cpu_model,
                spec.example,
                str(temp),
                input_names=list(spec.input_names),
                output_names=list(spec.output_names),
                dynamo=True,
                external_data=False,  # one self-contained file, hashed as a whole
                dynamic_shapes=spec.dynamic_shapes,
                verbose=False,
            )
        install(temp, path, key_sha256=key_sha256, extra={"torch": torch.__version__})
    except Exception as error:
        raise OnnxModelError(f"exporting {spec.what} to ONNX failed: {error}") from error
    finally:
        temp.unlink(missing_ok=True)
    with _export_count_lock:
        _export_count += 1
    logger.info("exported %s to %s", spec.what, path)


def cache_problem(path: Path, *, key_sha256: str) -> str | None:
    """Why the cached file cannot be used, or None when it matches its manifest."""
    if not path.is_file():
        return "not exported yet"
    try:
        manifest = json.loads(manifest_path(path).read_text())
    except (OSError, ValueError) as error:
        return f"its manifest is unreadable ({type(error).__name__})"
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        return "its manifest is of another format"
    if manifest.get("weights_sha256") != key_sha256.lower():
        return "it was exported from other weights"
    if manifest.get("onnx_sha256") != sha256_of(path):
        return "its SHA-256 does not match its manifest (corrupt or replaced)"
    return None


def open_session(path: Path, *, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Without spinning, idle threads give the cores back at once: detection of one request runs
    # while another is embedded.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
        raise OnnxModelError(f"ONNX Runtime cannot load {path}: {error}") from None


def cached_session(
    model: torch.nn.Module,
    path: Path,
    *,
    key_sha256: str,
    spec: ExportSpec,
    threads: int,
    check: Callable[[ort.InferenceSession], None],
) -> tuple[ort.InferenceSession, bool]:
    """A checked session of the cached export, exporting first when the cache is missing or bad.

    Returns the session and whether it was exported now. `check` raises OnnxModelError when the
    session does not reproduce the torch model.
    """
    problem = cache_problem(path, key_sha256=key_sha256)
    if problem is None:
        try:
            session = open_session(path, threads=threads)
            check(session)
            return session, False
        except OnnxModelError as error:
            problem = str(error)
    if path.exists():
        logger.warning("re-exporting %s to %s: %s", spec.what, path, problem)
    export_model(model, path, key_sha256=key_sha256, spec=spec)
    session = open_session(path, threads=threads)
    check(session)
    return session, True


def run_checked(session: ort.InferenceSession, inputs: dict[str, Any], *, what: str) -> list[Any]:
    """session.run, with any failure of a broken graph reported as OnnxModelError."""
    try:
        return list(session.run(None, inputs))
    except Exception as error:  # noqa: BLE001 - a broken graph fails in many ways at run time
        raise OnnxModelError(f"{what} fails to run: {error}") from None
