"""The inference pool runs work off the event loop and sheds load past its bound."""

from __future__ import annotations

import asyncio
import contextvars
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


def test_pool_runs_each_call_in_its_callers_context_so_logs_keep_the_request_id() -> None:
    request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
    pool = InferencePool(workers=1, max_pending=4, deadline_s=5.0)

    async def call_as(name: str) -> str | None:
        request_id.set(name)
        return await pool.run(request_id.get)

    async def both() -> list[str | None]:
        return list(await asyncio.gather(call_as("first"), call_as("second")))

    try:
        assert asyncio.run(both()) == ["first", "second"]
    finally:
        pool.shutdown()
