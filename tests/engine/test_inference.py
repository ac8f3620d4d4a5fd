"""The inference pool runs work off the event loop and sheds load past its bound."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.engine.inference import InferencePool
from app.errors import DeadlineExceededError, OverloadedError


def test_pool_runs_calls_on_its_own_threads() -> None:
    pool = InferencePool(workers=1, max_pending=4, deadline_s=30)

    name = asyncio.run(pool.run(lambda: threading.current_thread().name))

    pool.shutdown()
    assert name.startswith("facerec-inference")


def test_pool_refuses_calls_past_max_pending_at_once() -> None:
    pool = InferencePool(workers=1, max_pending=1, deadline_s=30)
    release = threading.Event()

    async def scenario() -> None:
        first = asyncio.ensure_future(pool.run(release.wait, 10))
        await asyncio.sleep(0)  # let the first call be admitted
        with pytest.raises(OverloadedError):
            await pool.run(lambda: None)
        release.set()
        assert await first is True

    asyncio.run(scenario())
    pool.shutdown()
    assert pool.pending == 0


def test_call_past_its_deadline_is_answered_with_deadline_exceeded() -> None:
    pool = InferencePool(workers=1, max_pending=4, deadline_s=0.05)
    release = threading.Event()

    with pytest.raises(DeadlineExceededError) as late:
        asyncio.run(pool.run(release.wait, 5))

    release.set()
    pool.shutdown()
    assert late.value.status == 503
    assert late.value.headers["Retry-After"]
