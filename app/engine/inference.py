"""The inference pool: a few dedicated threads for model calls, never the event loop.

torch releases the GIL inside its kernels, so threads (not processes, which would copy the
model) are right. The number of waiting calls is bounded: past it, callers are told to come
back later at once rather than queueing without limit.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from app.errors import DeadlineExceededError, OverloadedError

P = ParamSpec("P")
T = TypeVar("T")


class InferencePool:
    """Runs blocking model calls on `workers` threads with at most `max_pending` calls admitted."""

    def __init__(
        self, *, workers: int, max_pending: int, deadline_s: float, on_refused: Callable[[str], None] | None = None
    ) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="facerec-inference")
        self._max_pending = max_pending
        self._deadline_s = deadline_s
        self._pending = 0
        self._on_refused = on_refused or _ignore  # told the error code of every refused call (the metrics)

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def max_pending(self) -> int:
        return self._max_pending

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._pending >= self._max_pending:
            self._on_refused(OverloadedError.code)
            raise OverloadedError(
                f"{self._pending} images are already waiting for the face model; retry shortly.",
                details={"max_pending": self._max_pending},
            )
        self._pending += 1  # only touched from the event loop thread: no lock needed
        try:
            loop = asyncio.get_running_loop()
            # In the caller's context, so that the call's log lines carry its request id.
            call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
            future = loop.run_in_executor(self._executor, call)
            # A call still queued at the deadline is cancelled before it starts; one already
            # running finishes in its thread, but the caller is answered now.
            async with asyncio.timeout(self._deadline_s):
                return await future
        except TimeoutError:
            self._on_refused(DeadlineExceededError.code)
            raise DeadlineExceededError(
                f"The image was not processed within {self._deadline_s:g}s; retry shortly.",
                details={"deadline_s": self._deadline_s},
            ) from None
        finally:
            self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _ignore(code: str) -> None:
    pass
