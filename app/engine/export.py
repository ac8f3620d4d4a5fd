"""torch as the reference: the models are exported from it to ONNX, and checked against it.

This is the only module of the CPU path that imports torch, and it is imported only in the child
process (app.engine.exporting) that makes an export: on the first start, for new weights, or
after a torch or facenet-pytorch upgrade. Each export is checked against its torch module on a
fixed input; the parity and the torch outputs go into the export's manifest, so later starts
check the ONNX session against them without building any torch module.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch
from facenet_pytorch import MTCNN, InceptionResnetV1

from app.engine import mtcnn, onnx_embedder
from app.engine.export_cache import install, temp_beside
from app.engine.faces import EMBEDDING_DIM
from app.engine.onnx_runtime import OnnxModelError, check_input, open_session, run_checked
from app.errors import WeightsUnavailableError

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float32]


class ParityCheck(Protocol):
    """torch's and ONNX Runtime's outputs -> the parity figures for the manifest, and whether they are in the limit."""

    def __call__(self, *, expected: list[Array], actual: list[Array]) -> tuple[dict[str, Any], bool]: ...


@dataclass(frozen=True)
class ExportSpec:
    """How one torch module is exported and checked."""

    what: str  # for messages: "the embedding model", "MTCNN's PNet"
    check_input: Array
    input_name: str
    output_names: Sequence[str]
    dynamic_axes: dict[int, tuple[str, int, int]]  # axis -> (name, min, max)
    parity: ParityCheck


def load_embedder(weights_path: Path, *, device: torch.device) -> InceptionResnetV1:
    """InceptionResnetV1 with the file's weights, loaded strictly; the VGGFace2 classifier is accepted."""
    try:
        state: object = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise WeightsUnavailableError(
            f"facerec cannot start: {weights_path} is not a torch state_dict ({error})."
        ) from None
    if not isinstance(state, dict):
        # A valid torch file can hold a bare tensor or a list; without this it fails later as an AttributeError.
        raise WeightsUnavailableError(
            f"facerec cannot start: {weights_path} is not a torch state_dict (it holds a {type(state).__name__})."
        )
    model = InceptionResnetV1(pretrained=None, classify=False)
    logits_weight = state.get("logits.weight")
    if isinstance(logits_weight, torch.Tensor) and logits_weight.ndim == 2:
        # The release file carries the 8631-class VGGFace2 classifier; embeddings never use it.
        model.logits = torch.nn.Linear(EMBEDDING_DIM, logits_weight.shape[0])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise WeightsUnavailableError(
            f"facerec cannot start: {weights_path} does not fit InceptionResnetV1 ({error})."
        ) from None
    return model.eval().to(device)


def export_module(module: torch.nn.Module, *, path: Path, key_sha256: str, spec: ExportSpec) -> dict[str, Any]:
    """Export the module to path (via a temporary file renamed into place) once it passes its parity check."""
    cpu_module = module if next(module.parameters()).device.type == "cpu" else copy.deepcopy(module).cpu()
    example = torch.from_numpy(spec.check_input)
    with torch.inference_mode():
        outputs = cpu_module(example)
        expected = [output.float().numpy() for output in ((outputs,) if torch.is_tensor(outputs) else outputs)]
    dynamic = {axis: torch.export.Dim(name, min=low, max=high) for axis, (name, low, high) in spec.dynamic_axes.items()}
    temp = temp_beside(path)
    try:
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                cpu_module,
                (example,),
                str(temp),
                input_names=[spec.input_name],
                output_names=list(spec.output_names),
                dynamo=True,
                external_data=False,  # one self-contained file, hashed as a whole
                dynamic_shapes=(dynamic,),
                verbose=False,
            )
        actual = run_checked(open_session(temp, threads=1), inputs={spec.input_name: spec.check_input}, what=spec.what)
        parity, within = spec.parity(expected=expected, actual=actual)
        if not within:
            raise OnnxModelError(f"the ONNX export of {spec.what} does not reproduce torch ({parity})")
        install(temp, path=path, key_sha256=key_sha256, reference=expected, extra={"parity": parity})
    except OnnxModelError:
        raise
    except Exception as error:
        raise OnnxModelError(f"exporting {spec.what} to ONNX failed: {error}") from error
    finally:
        temp.unlink(missing_ok=True)
    logger.info("exported %s to %s (parity with torch %s: %s)", spec.what, path, torch.__version__, parity)
    return parity


def _cosine_parity(*, expected: list[Array], actual: list[Array]) -> tuple[dict[str, Any], bool]:
    cosine = onnx_embedder.min_cosine(expected[0], actual=actual[0])
    figures = {"min_cosine": round(cosine, 9), "limit": onnx_embedder.PARITY_MIN_COSINE, "torch": torch.__version__}
    return figures, cosine >= onnx_embedder.PARITY_MIN_COSINE


def _abs_parity(*, expected: list[Array], actual: list[Array]) -> tuple[dict[str, Any], bool]:
    difference = mtcnn.max_abs_difference(expected, actual=actual)
    figures = {"max_abs_difference": difference, "limit": mtcnn.PARITY_MAX_ABS, "torch": torch.__version__}
    return figures, difference <= mtcnn.PARITY_MAX_ABS


def export_embedder(weights_path: Path, *, path: Path, weights_sha256: str) -> None:
    """Load the (verified) weights strictly into InceptionResnetV1 and export it to path."""
    model = load_embedder(weights_path, device=torch.device("cpu"))
    spec = ExportSpec(
        what="the embedding model",
        check_input=check_input(onnx_embedder.CHECK_SHAPE, seed=onnx_embedder.CHECK_SEED),
        input_name=onnx_embedder.INPUT_NAME,
        output_names=[onnx_embedder.OUTPUT_NAME],
        dynamic_axes={0: ("batch", 1, 4096)},
        parity=_cosine_parity,
    )
    export_module(model, path=path, key_sha256=weights_sha256, spec=spec)


def export_mtcnn(paths: dict[str, Path], *, key_sha256: str) -> None:
    """Export PNet, RNet and ONet of facenet-pytorch's bundled MTCNN to their paths."""
    detector = MTCNN(device=torch.device("cpu")).eval()
    for name in mtcnn.NETS:
        # PNet is fully convolutional: one image of any size from 12x12 (the smallest pyramid level).
        dynamic = (
            {2: ("height", 12, 16384), 3: ("width", 12, 16384)} if name == "pnet" else {0: ("candidates", 1, 1 << 20)}
        )
        spec = ExportSpec(
            what=f"MTCNN's {name.upper()}",
            check_input=check_input(mtcnn.CHECK_SHAPES[name], seed=mtcnn.CHECK_SEED),
            input_name="pixels",
            output_names=mtcnn.OUTPUTS[name],
            dynamic_axes=dynamic,
            parity=_abs_parity,
        )
        export_module(getattr(detector, name), path=paths[name], key_sha256=key_sha256, spec=spec)
