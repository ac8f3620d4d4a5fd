"""Requests to the running replicas: enrol and identify helpers, a request loop on a thread that
records a timeline of (t, status), and the timeline folded into lines for the report."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from PIL import Image

from tests.conftest import FACES_DIR, encode

# Longer than any answer the service should take, even to say the database is gone: a request
# that reaches it is a hang.
REQUEST_TIMEOUT_S = 20.0
PROBE = "lfw_al_gore/1.jpg"  # 250 x 250: cheap to send and to detect in a loop
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"


def client(*, base_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT_S)


def photo(relative: str = PROBE) -> bytes:
    return (FACES_DIR / relative).read_bytes()


def distinct_photo(index: int, relative: str = PROBE) -> bytes:
    """The same face with one pixel changed: other bytes, so the gallery stores it as a new face."""
    image = Image.open(io.BytesIO(photo(relative))).convert("RGB")
    image.putpixel((0, 0), (index % 256, index // 256 % 256, 99))
    return encode(image, "PNG")


def enroll(
    api: httpx.Client, *, subject: str, collection: str, image: bytes, idempotency_key: str | None = None
) -> httpx.Response:
    # on_conflict=allow: with untrained weights every face matches every other, and the
    # duplicate-identity guard would refuse a second subject.
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return api.post(
        "/enroll",
        files={"image": ("face.png", image)},
        data={"subject": subject, "collection": collection, "on_conflict": "allow"},
        headers=headers,
    )


def identify(api: httpx.Client, *, collection: str, image: bytes) -> httpx.Response:
    return api.post("/identify", files={"image": ("probe.jpg", image)}, data={"collection": collection})


@dataclass(frozen=True)
class Sample:
    t: float
    status: int | str
    code: str | None = None
    retry_after: str | None = None

    @property
    def label(self) -> str:
        return " ".join(str(part) for part in (self.status, self.code) if part is not None)


def sample(response: httpx.Response, *, t: float) -> Sample:
    code = None
    if response.status_code >= 400:
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "<no error code>"
    return Sample(t=t, status=response.status_code, code=code, retry_after=response.headers.get("retry-after"))


@dataclass
class Timeline:
    """Samples and named events, in seconds from the timeline's start."""

    start: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.start

    def add(self, item: Sample) -> None:
        with self.lock:
            self.samples.append(item)

    def mark(self, event: str) -> float:
        with self.lock:
            t = self.now()
            self.events.append((t, event))
            return t

    def snapshot(self) -> list[Sample]:
        with self.lock:
            return list(self.samples)

    def lines(self) -> list[str]:
        """Runs of the same answer, with the events between them: `t0-t1 s  503 CODE x4`."""
        entries = [(t, f"{t:6.1f} s          -- {event}") for t, event in self.events]
        run: list[Sample] = []
        for item in [*self.snapshot(), None]:
            if run and (item is None or item.label != run[0].label):
                entries.append((run[0].t, f"{run[0].t:6.1f}-{run[-1].t:6.1f} s  {run[0].label} x{len(run)}"))
                run = []
            if item is not None:
                run.append(item)
        return [text for _, text in sorted(entries)]


class Loop:
    """Calls `request` over and over on a thread until stopped, recording each answer."""

    def __init__(self, *, name: str, request: Callable[[], httpx.Response], timeline: Timeline) -> None:
        self.name = name
        self._request = request
        self.timeline = timeline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-{name}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = self.timeline.now()
            try:
                self.timeline.add(sample(self._request(), t=t))
            except httpx.TimeoutException:
                self.timeline.add(Sample(t=t, status=TIMEOUT))
            except httpx.TransportError:  # refused, reset or closed mid-answer: one label for them all
                self.timeline.add(Sample(t=t, status=UNREACHABLE))
                self._stop.wait(0.2)

    def __enter__(self) -> Loop:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=REQUEST_TIMEOUT_S + 5)

    def wait_for(self, predicate: Callable[[list[Sample]], bool], *, deadline_s: float, what: str) -> float:
        """Poll the samples until predicate holds; returns when (timeline seconds) it did."""
        deadline = time.monotonic() + deadline_s
        while not predicate(self.timeline.snapshot()):
            assert time.monotonic() < deadline, f"{self.name}: {what} not within {deadline_s:.0f} s:\n" + "\n".join(
                self.timeline.lines()
            )
            time.sleep(0.1)
        return self.timeline.now()


def wait_until(predicate: Callable[[], bool], *, deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {deadline_s:.0f} s"
        time.sleep(0.1)


def outage_summary(samples: list[Sample], *, fault_t: float) -> str:
    """When the refusals began and ended, and how long after the fault answers were 200 again."""
    refused = [item for item in samples if item.status != 200]
    if not refused:
        return f"no refusal seen ({len(samples)} answers, all 200)"
    back = next((item.t for item in samples if item.status == 200 and item.t > refused[-1].t), None)
    again = "never" if back is None else f"from {back:.1f} s, {back - fault_t:.1f} s after the fault"
    return f"{len(refused)} refused between {refused[0].t:.1f} and {refused[-1].t:.1f} s; 200 again {again}"


def ok_streak(count: int, *, after: float) -> Callable[[list[Sample]], bool]:
    """Holds once the last `count` samples, all begun after `after`, are 200s."""

    def holds(samples: list[Sample]) -> bool:
        tail = samples[-count:]
        return len(tail) == count and all(item.status == 200 and item.t >= after for item in tail)

    return holds
