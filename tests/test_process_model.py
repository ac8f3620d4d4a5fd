"""The process model: how many model calls run at once, and how many threads each uses."""

from __future__ import annotations

import pytest

from app.composition import ProcessModel
from app.config import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("cores", [1, 2, 16])
def test_by_default_each_core_runs_one_single_threaded_call_and_embedding_uses_every_core(cores: int) -> None:
    model = ProcessModel.of(settings(), cores=cores)

    assert model == ProcessModel(workers=cores, threads_per_call=1, embed_threads=cores)


def test_fewer_workers_share_the_cores_between_them() -> None:
    model = ProcessModel.of(settings(inference_workers=2), cores=8)

    assert model == ProcessModel(workers=2, threads_per_call=4, embed_threads=8)


def test_more_workers_than_cores_still_get_one_thread_each() -> None:
    model = ProcessModel.of(settings(inference_workers=4), cores=2)

    assert model == ProcessModel(workers=4, threads_per_call=1, embed_threads=2)


def test_explicit_threads_are_used_for_every_call() -> None:
    model = ProcessModel.of(settings(inference_workers=1, torch_threads=3), cores=2)

    assert model == ProcessModel(workers=1, threads_per_call=3, embed_threads=3)
