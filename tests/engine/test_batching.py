"""Cross-request micro-batching: same embeddings as one call per request, each caller its own rows."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from PIL import Image

from app.engine.batching import EmbeddingBatcher
from app.engine.engine import FaceEngine
from app.engine.faces import EMBEDDING_DIM, Crops, Embeddings
from app.engine.inference import InferencePool

PHOTOS = ["lfw_al_gore/1.jpg", "amy_adams/1.jpg", "john_lennon/1.jpg", "_groups/2_two_people.jpg", "kate_siegel/1.jpg"]


def _tagged_embed(crops: Crops) -> Embeddings:
    """A stand-in model that is slow enough for batches to form and tags each row with its crop's value."""
    time.sleep(0.05)
    rows = np.zeros((len(crops), EMBEDDING_DIM), dtype=np.float32)
    rows[:, 0] = crops.reshape(len(crops), -1)[:, 0]
    return rows


def _crops(value: float, *, count: int) -> Crops:
    return np.full((count, 3, 4, 4), value, dtype=np.float32)


async def _embed_all(batcher: EmbeddingBatcher, *, inputs: list[Crops]) -> list[Embeddings]:
    return list(await asyncio.gather(*(batcher.embed(crops) for crops in inputs)))


def test_concurrent_requests_share_model_calls_and_each_gets_its_own_rows() -> None:
    pool = InferencePool(workers=1, max_pending=64, deadline_s=30)
    batcher = EmbeddingBatcher(embed=_tagged_embed, pool=pool, max_faces=16, window_s=0)
    inputs = [_crops(float(number), count=1 + number % 3) for number in range(12)]

    results = asyncio.run(_embed_all(batcher, inputs=inputs))

    pool.shutdown()
    for number, (crops, rows) in enumerate(zip(inputs, results, strict=True)):
        assert rows.shape == (len(crops), EMBEDDING_DIM)
        assert np.all(rows[:, 0] == float(number))
    assert max(batcher.batch_sizes) > 1
    assert sum(batcher.batch_sizes) == sum(len(crops) for crops in inputs)
    assert len(batcher.batch_sizes) < len(inputs)


def test_batches_never_exceed_max_faces() -> None:
    pool = InferencePool(workers=1, max_pending=64, deadline_s=30)
    batcher = EmbeddingBatcher(embed=_tagged_embed, pool=pool, max_faces=4, window_s=0)

    asyncio.run(_embed_all(batcher, inputs=[_crops(1.0, count=2) for _ in range(10)]))

    pool.shutdown()
    assert max(batcher.batch_sizes) <= 4


def test_a_failing_model_call_fails_every_request_in_its_batch_and_later_ones_still_work() -> None:
    calls = 0

    def flaky(crops: Crops) -> Embeddings:
        nonlocal calls
        calls += 1
        if calls == 1:
            time.sleep(0.05)
            raise RuntimeError("model failed")
        return _tagged_embed(crops)

    pool = InferencePool(workers=1, max_pending=64, deadline_s=30)
    batcher = EmbeddingBatcher(embed=flaky, pool=pool, max_faces=16, window_s=0)

    async def scenario() -> tuple[list[BaseException | Embeddings], Embeddings]:
        first = await asyncio.gather(*(batcher.embed(_crops(1.0, count=1)) for _ in range(3)), return_exceptions=True)
        return first, await batcher.embed(_crops(2.0, count=1))

    first, later = asyncio.run(scenario())

    pool.shutdown()
    assert any(isinstance(outcome, RuntimeError) for outcome in first)
    assert later[0, 0] == 2.0


def test_batched_embeddings_equal_one_call_per_request_on_real_faces(engine: FaceEngine, faces_dir: Path) -> None:
    inputs = []
    for photo in PHOTOS:
        image = Image.open(faces_dir / photo).convert("RGB")
        inputs.append(engine.crops(image, faces=engine.detect(image)))
    alone = [engine.embed(crops) for crops in inputs]
    pool = InferencePool(workers=1, max_pending=64, deadline_s=60)
    batcher = EmbeddingBatcher(embed=engine.embed, pool=pool, max_faces=16, window_s=0.01)

    together = asyncio.run(_embed_all(batcher, inputs=inputs))

    pool.shutdown()
    assert max(batcher.batch_sizes) > 1
    for single, batched in zip(alone, together, strict=True):
        assert batched.shape == single.shape
        cosines = np.sum(single * batched, axis=1)
        assert np.all(cosines >= 0.99999), cosines
        np.testing.assert_allclose(batched, single, atol=1e-4)


def test_no_crops_means_no_model_call() -> None:
    pool = InferencePool(workers=1, max_pending=4, deadline_s=30)
    batcher = EmbeddingBatcher(embed=_tagged_embed, pool=pool, max_faces=16, window_s=0)

    rows = asyncio.run(batcher.embed(_crops(1.0, count=0)))

    pool.shutdown()
    assert rows.shape == (0, EMBEDDING_DIM)
    assert batcher.batch_sizes == []
