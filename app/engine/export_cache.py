"""ONNX models cached on disk, each with a manifest that says what it is and how it was checked.

A model is written to `<name>.onnx` through a temporary file renamed into place. Beside it,
`<name>.onnx.json` records the key of what was exported (the weights' SHA-256), the ONNX file's
own SHA-256, the library versions that made it, its parity against the torch reference when it
was made, and its outputs on a fixed check input. A cached file that does not match its
manifest (truncated, overwritten, exported from other weights or by other library versions) is
made again, never run; a file that matches is opened without torch, and must reproduce the
recorded outputs before it is used.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.engine.weights import sha256_of

CACHE_FORMAT = 2
# The libraries whose version changes what an export holds: a change re-exports (where installed).
EXPORTING_LIBRARIES = ("torch", "facenet-pytorch")

Array = npt.NDArray[np.float32]


def manifest_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".json")


def installed_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def temp_beside(path: Path) -> Path:
    """An empty temporary file in path's folder, to write a model into before install()."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(descriptor)
    return Path(temp_name)


def encode_arrays(arrays: list[Array]) -> list[dict[str, Any]]:
    return [
        {"shape": list(array.shape), "float32": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()}
        for array in arrays
    ]


def decode_arrays(encoded: list[dict[str, Any]]) -> list[Array]:
    return [
        np.frombuffer(base64.b64decode(item["float32"]), dtype=np.float32).reshape(item["shape"]) for item in encoded
    ]


def install(temp: Path, *, path: Path, key_sha256: str, reference: list[Array], extra: dict[str, Any]) -> None:
    """Move a finished model from temp to path, with the manifest cache_problem() checks."""
    manifest = {
        "format": CACHE_FORMAT,
        "weights_sha256": key_sha256.lower(),
        "onnx_sha256": sha256_of(temp),
        "libraries": {name: installed_version(name) for name in (*EXPORTING_LIBRARIES, "onnxruntime")},
        "reference_outputs": encode_arrays(reference),
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


def read_manifest(path: Path) -> dict[str, Any]:
    """The model's manifest; ValueError when it is missing, unreadable or of another format."""
    try:
        manifest = json.loads(manifest_path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"its manifest is unreadable ({type(error).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        raise ValueError("its manifest is of another format")
    return manifest


def cache_problem(path: Path, *, key_sha256: str, check_libraries: bool = True) -> str | None:
    """Why the cached file cannot be used, or None when it matches its manifest."""
    if not path.is_file():
        return "not exported yet"
    try:
        manifest = read_manifest(path)
    except ValueError as error:
        return str(error)
    if manifest.get("weights_sha256") != key_sha256.lower():
        return "it was exported from other weights"
    if manifest.get("onnx_sha256") != sha256_of(path):
        return "its SHA-256 does not match its manifest (corrupt or replaced)"
    if check_libraries:
        made_with = manifest.get("libraries") or {}
        for library in EXPORTING_LIBRARIES:
            installed = installed_version(library)
            if installed is not None and made_with.get(library) != installed:
                return f"it was made with {library} {made_with.get(library)}, and {installed} is installed"
    return None


def reference_outputs(path: Path) -> list[Array]:
    return decode_arrays(read_manifest(path)["reference_outputs"])
