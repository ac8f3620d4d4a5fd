"""`facerec models`: the weights, their ONNX exports, and the opt-in int8 embedder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import OK, SOME_REJECTED, USAGE, JsonFlag, command, fail, print_json, settings
from app.services.evaluation.dataset import IMAGE_SUFFIXES

app = typer.Typer(help="Model weights (local only).", no_args_is_help=True)


@app.command()
@command
def fetch(
    dest: Annotated[Path | None, typer.Option(help="directory to write to (default: FACEREC_MODEL_DIR)")] = None,
    as_json: JsonFlag = False,
) -> int:
    """Download and verify the VGGFace2 weights."""
    from app.composition import weights_source
    from app.engine.weights import download, verify
    from app.errors import WeightsUnavailableError

    config = settings()
    source = weights_source(config)
    target = (dest or config.model_dir) / source.filename
    if target.is_file():
        verify(target, source=source)
        if as_json:
            print_json({"path": str(target), "fetched": False, "sha256": source.sha256})
        else:
            print(f"{target} is already present and verified")
        return OK
    try:
        fetched = download(source, dest_dir=dest or config.model_dir)
    except OSError as error:
        # urllib's errors (refused, DNS, timeout, HTTP 404) are OSErrors: one line, not a traceback.
        raise WeightsUnavailableError(
            f"facerec models fetch: downloading {source.url} failed ({error}). Check the network, or set "
            f"FACEREC_WEIGHTS_URL to a reachable copy of the file."
        ) from None
    if as_json:
        print_json({"path": str(fetched), "fetched": True, "sha256": source.sha256})
    else:
        print(f"fetched and verified {fetched}")
    return OK


@app.command()
@command
def prepare(as_json: JsonFlag = False) -> int:
    """Verify the weights and make (or check) the ONNX exports, as a start-up would; print what runs."""
    from app.composition import open_engine

    description = open_engine(settings()).description
    if as_json:
        print_json(description.as_dict() | {"model_id": description.model_id})
        return OK
    print(", ".join(f"{name}: {value}" for name, value in description.as_dict().items()))
    return OK


@app.command()
@command
def quantize(
    directory: Annotated[Path, typer.Argument(help="photos of faces, searched recursively")],
    max_faces: Annotated[int, typer.Option(help="faces to use")] = 400,
    as_json: JsonFlag = False,
) -> int:
    """Make the int8 embedder (FACEREC_EMBEDDING_PRECISION=int8) from the face photos in DIRECTORY."""
    from app.composition import image_limits, open_engine
    from app.engine.onnx_embedder import cache_path
    from app.engine.onnx_runtime import OnnxModelError
    from app.engine.quantize import calibration_crops, quantize_embedder

    if not directory.is_dir():
        raise fail(f"{directory} is not a directory", code=USAGE)
    config = settings()
    photos = sorted(path for path in directory.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    # The fp32 ONNX export is what gets quantized: make sure it exists, whatever the settings say.
    engine = open_engine(
        config.model_copy(update={"device": "cpu", "embedding_backend": "onnx", "embedding_precision": "fp32"})
    )
    crops, skipped = calibration_crops(engine, photos=photos, limits=image_limits(config), max_faces=max_faces)
    print(
        f"{len(crops)} face crops from {len(photos)} photos ({skipped} without a usable face)",
        file=sys.stderr if as_json else sys.stdout,
    )
    try:
        report = quantize_embedder(
            cache_path(config.model_dir / "onnx", weights_sha256=config.weights_sha256),
            weights_sha256=config.weights_sha256,
            crops=crops,
        )
    except OnnxModelError as error:
        print(f"facerec: {error}", file=sys.stderr)
        return SOME_REJECTED
    if as_json:
        print_json(
            {
                "path": str(report.path),
                "photos": len(photos),
                "calibration_crops": report.calibration_crops,
                "checked_crops": report.checked_crops,
                "min_cosine": report.min_cosine,
                "mean_cosine": report.mean_cosine,
            }
        )
        return OK
    print(
        f"wrote {report.path}: calibrated on {report.calibration_crops} faces; on {report.checked_crops} others its "
        f"embeddings match fp32 to cosine {report.min_cosine:.4f} (min), {report.mean_cosine:.4f} (mean)"
    )
    print("use it with FACEREC_EMBEDDING_PRECISION=int8")
    return OK
