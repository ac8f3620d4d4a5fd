"""The torch backends: facenet-pytorch's MTCNN and InceptionResnetV1 on a torch device.

They run where ONNX Runtime does not: on CUDA, when asked for explicitly
(FACEREC_DETECTOR_BACKEND / FACEREC_EMBEDDING_BACKEND=torch), or as the fallback of `auto`
when an ONNX export cannot be made. Importing this module imports torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from app.engine.crops import downscale
from app.engine.export import load_embedder
from app.engine.faces import CROP_SIZE, Crops, DetectedFace, Embeddings, check_crops, no_embeddings


def cuda_available() -> bool:
    return bool(torch.cuda.is_available())


def set_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


class TorchDetector:
    """facenet-pytorch's MTCNN.detect, with landmarks, on one device."""

    def __init__(self, *, device: str, min_face_size: int) -> None:
        self._device = torch.device(device)
        self._mtcnn = MTCNN(
            image_size=CROP_SIZE,
            margin=0,
            min_face_size=min_face_size,
            keep_all=True,
            post_process=True,
            device=self._device,
        ).eval()

    @property
    def backend(self) -> str:
        return f"torch {self._device.type}"

    def detect(self, image: Image.Image, *, shrink: float = 1.0) -> list[DetectedFace]:
        small, scale = downscale(image, max_side=round(max(image.size) * shrink)) if shrink < 1 else (image, 1.0)
        with torch.inference_mode():
            boxes, probabilities, points = self._mtcnn.detect(small, landmarks=True)
        if boxes is None:
            return []
        return [
            DetectedFace(
                box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                landmarks=tuple((float(x), float(y)) for x, y in point),
                probability=float(probability),
            ).scaled(x=1 / scale, y=1 / scale)
            for box, probability, point in zip(boxes, probabilities, points, strict=True)
        ]


class TorchEmbedder:
    """InceptionResnetV1 with the verified weights, loaded strictly, on one device."""

    def __init__(self, weights_path: Path, *, device: str) -> None:
        self._device = torch.device(device)
        self._model = load_embedder(weights_path, device=self._device)

    @property
    def backend(self) -> str:
        return f"torch {self._device.type}"

    def embed(self, crops: Crops) -> Embeddings:
        batch = check_crops(crops)
        if len(batch) == 0:
            return no_embeddings()
        with torch.inference_mode():
            output = self._model(torch.from_numpy(batch).to(self._device))
        return np.ascontiguousarray(output.float().cpu().numpy(), dtype=np.float32)
