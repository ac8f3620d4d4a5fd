"""The face model: MTCNN finds faces and landmarks, InceptionResnetV1 embeds them.

One engine per process, built in the lifespan. It imports neither FastAPI nor SQLAlchemy, and
its methods are blocking: callers run them in the inference pool.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import torch
from facenet_pytorch import MTCNN, InceptionResnetV1
from facenet_pytorch.models.mtcnn import fixed_image_standardization
from facenet_pytorch.models.utils.detect_face import extract_face
from PIL import Image

from app.errors import WeightsUnavailableError
from app.services.images import downscale
from app.services.onnx_cache import OnnxModelError
from app.services.onnx_detector import OnnxMtcnn
from app.services.onnx_embedder import OnnxEmbedder, Precision
from app.services.weights import sha256_of

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 512
CROP_SIZE = 160

Embeddings = npt.NDArray[np.float32]
Backend = Literal["auto", "torch", "onnx"]
_Model = TypeVar("_Model")


@dataclass(frozen=True)
class DetectedFace:
    """One face in original-image pixels: box (x1, y1, x2, y2), five landmarks, MTCNN probability."""

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    probability: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return self.width * self.height


@dataclass(frozen=True)
class EngineConfig:
    """How the engine is built."""

    weights_path: Path
    model_id: str
    device: str = "auto"
    torch_threads: int = 0  # per detection call, and torch's; 0 = torch's default, one per core
    embed_threads: int = 0  # of the ONNX embedder, which runs one batch at a time; 0 = one per core
    detector_min_face_px: int = 40
    detect_max_side: int = 800
    # auto: ONNX Runtime on the CPU, torch on CUDA. The ONNX exports are cached in onnx_cache_dir
    # (default: an `onnx` folder beside the weights) under the SHA-256 of the weights they hold.
    embedding_backend: Backend = "auto"
    detector_backend: Backend = "auto"
    # int8: the model `facerec models quantize` made, on ONNX Runtime; no fallback to fp32.
    embedding_precision: Precision = "fp32"
    onnx_cache_dir: Path | None = None
    weights_sha256: str | None = None  # of weights_path, when the caller has verified it; else hashed here


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


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


class FaceEngine:
    """Detection and embedding, thread-safe, on one device."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.model_id = config.model_id
        if config.torch_threads > 0:
            torch.set_num_threads(config.torch_threads)
        self.device = pick_device(config.device)
        self._detector = MTCNN(
            image_size=CROP_SIZE,
            margin=0,
            min_face_size=config.detector_min_face_px,
            keep_all=True,
            select_largest=True,
            post_process=True,
            device=self.device,
        ).eval()
        if config.embedding_precision == "int8" and (
            config.embedding_backend == "torch" or (config.embedding_backend == "auto" and self.device.type != "cpu")
        ):
            raise WeightsUnavailableError(
                "facerec cannot start: FACEREC_EMBEDDING_PRECISION=int8 runs on ONNX Runtime on the CPU only; "
                "set FACEREC_DEVICE=cpu or use fp32."
            )
        embedder = load_embedder(config.weights_path, device=self.device)
        cache_dir = config.onnx_cache_dir or config.weights_path.parent / "onnx"
        threads = config.torch_threads
        self._onnx = self._optional_onnx(
            config.embedding_backend,
            "embedding",
            lambda: OnnxEmbedder(
                embedder,
                weights_sha256=config.weights_sha256 or sha256_of(config.weights_path),
                cache_dir=cache_dir,
                threads=config.embed_threads,
                precision=config.embedding_precision,
            ),
            fallback=config.embedding_precision == "fp32",
        )
        self._onnx_detector = self._optional_onnx(
            config.detector_backend,
            "detection",
            lambda: OnnxMtcnn(self._detector, cache_dir=cache_dir, threads=threads),
        )
        # The torch embedder is kept only where it runs: once ONNX has reproduced it, its ~110 MB
        # of weights would sit idle for the life of the process.
        self._embedder: InceptionResnetV1 | None = embedder if self._onnx is None else None
        self.embedding_backend: Literal["torch", "onnx"] = "torch" if self._onnx is None else "onnx"
        self.detector_backend: Literal["torch", "onnx"] = "torch" if self._onnx_detector is None else "onnx"
        # One call at a time per model: each call already spreads over its threads, so
        # concurrent calls into the same model only contend. Two locks let detection of one
        # request overlap with embedding of another.
        self._detect_lock = threading.Lock()
        self._embed_lock = threading.Lock()
        logger.info(
            "face engine ready: model %s on %s, detection by %s, embeddings by %s",
            self.model_id,
            self.device,
            self.detector_backend,
            self.embedding_backend,
        )

    def _optional_onnx(
        self, wanted: Backend, what: str, build: Callable[[], _Model], *, fallback: bool = True
    ) -> _Model | None:
        """The ONNX Runtime model when the backend asks for it; auto falls back to torch if it fails."""
        if wanted == "torch" or (wanted == "auto" and self.device.type != "cpu"):
            return None
        try:
            return build()
        except (OnnxModelError, OSError) as error:
            if wanted == "onnx" or not fallback:
                raise WeightsUnavailableError(f"facerec cannot start: the ONNX {what} model failed: {error}") from None
            logger.warning("%s with torch: the ONNX %s model failed (%s)", what, what, error)
            return None

    def detect(self, image: Image.Image) -> list[DetectedFace]:
        """Every face in the image, largest first, in original-image pixels."""
        small, scale = downscale(image, max_side=self.config.detect_max_side)
        if self._onnx_detector is not None:
            # No lock: ONNX Runtime sessions run concurrently, each call on its own few threads.
            found = self._onnx_detector.detect(small)
            boxes, probs, points = found.boxes, found.probabilities, found.landmarks
        else:
            with self._detect_lock, torch.inference_mode():
                boxes, probs, points = self._detector.detect(small, landmarks=True)
            if boxes is None:
                return []
        faces = [
            DetectedFace(
                box=_clip_box(box / scale, width=image.width, height=image.height),
                landmarks=tuple((float(x / scale), float(y / scale)) for x, y in point),
                probability=float(prob),
            )
            for box, prob, point in zip(boxes, probs, points, strict=True)
        ]
        return sorted(faces, key=lambda face: face.area, reverse=True)

    def embed(self, image: Image.Image, faces: list[DetectedFace]) -> Embeddings:
        """L2-normalised 512-d float32 embeddings, one row per face, from the library's 160x160 crops."""
        if not faces:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return self.embed_crops(face_crops(image, faces))

    def embed_crops(self, crops: torch.Tensor) -> Embeddings:
        """Embeddings of standardised crops shaped [n, 3, 160, 160], by the configured backend."""
        if self._onnx is not None:
            with self._embed_lock:
                return self._onnx.embed(crops.numpy())
        if self._embedder is None:  # unreachable: it is kept whenever ONNX does not embed
            raise RuntimeError("the torch embedder was released")
        with self._embed_lock, torch.inference_mode():
            output = self._embedder(crops.to(self.device))
        return np.ascontiguousarray(output.float().cpu().numpy(), dtype=np.float32)


def face_crops(image: Image.Image, faces: list[DetectedFace]) -> torch.Tensor:
    """The library's standardised 160x160 crops of the faces, shaped [n, 3, 160, 160]."""
    return torch.stack(
        [fixed_image_standardization(extract_face(image, np.asarray(face.box), CROP_SIZE, 0)) for face in faces]
    )


def _clip_box(box: npt.NDArray[Any], *, width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))
