"""Identify throughput: the facerec service over HTTP against a plain facenet-pytorch loop.

In one run, on the same probe images, this measures

  (a) images/s and latency (p50/p95/p99) of `POST /identify` on the real service, started as a
      subprocess the way the README says (`facerec serve`) with its own embedded Postgres, after
      enrolling a gallery (one photo per identity) through `POST /enroll`, at each client
      concurrency asked for;
  (b) the same figures for a plain facenet-pytorch loop in this process: PIL, MTCNN detect +
      extract, InceptionResnetV1, numpy nearest neighbour over the same gallery;
  (c) the ratio of the two throughputs;

then prints a table and writes JSON.

    uv run python -m benchmarks.identify_throughput --limit 60 --concurrency 1,4

Without --weights (or FACEREC_WEIGHTS_PATH) both sides use an untrained InceptionResnetV1 saved
in the release file's format: the speed is that of the VGGFace2 weights, the accuracy is not.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import os
import platform
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import torch
from facenet_pytorch import MTCNN, InceptionResnetV1
from PIL import Image

from app.config import VGGFACE2_WEIGHTS_FILENAME, VGGFACE2_WEIGHTS_SHA256, Settings
from benchmarks.common import BenchmarkError, parse_ints, positive_int, run_main, write_report
from benchmarks.processes import CpuMeter, CpuUse, machine_ticks, service_pid

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FACES_DIR = REPO_ROOT.parent / "shared" / "faces"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "identify_throughput.json"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
EMBEDDING_DIM = 512
VGGFACE2_CLASSES = 8631
TOP_K = 3  # the service's default candidates per face; the library side ranks as many
# Settings the benchmark decides for the service; any other FACEREC_* variable is passed through.
CONTROLLED_ENV = frozenset(
    {
        "FACEREC_HOST",
        "FACEREC_PORT",
        "FACEREC_DATA_DIR",
        "FACEREC_DATABASE_URL",
        "FACEREC_EMBEDDED_DB_PORT",
        "FACEREC_MODEL_DIR",
        "FACEREC_WEIGHTS_PATH",
        "FACEREC_WEIGHTS_SHA256",
        "FACEREC_ALLOW_DOWNLOAD",
        "FACEREC_DEVICE",
        "FACEREC_RATE_LIMIT_IDENTIFY_PER_MINUTE",
        "FACEREC_RATE_LIMIT_ENROLL_PER_MINUTE",
    }
)
UNTRAINED_NOTE = (
    "UNTRAINED WEIGHTS: no --weights (or FACEREC_WEIGHTS_PATH) was given, so both sides use a randomly "
    "initialised InceptionResnetV1 in the release file's format. Accuracy figures are meaningless; "
    "speed is the same as with the VGGFace2 weights (same network, same arithmetic)."
)

Embeddings = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Photo:
    identity: str
    name: str  # path relative to the faces folder
    data: bytes


@dataclass(frozen=True)
class Weights:
    path: Path
    sha256: str
    untrained: bool


@dataclass(frozen=True)
class Outcome:
    """One image through one side: how long it took, and what came back."""

    latency_s: float
    ok: bool
    error: str | None = None
    faces: int = 0
    nearest: str | None = None  # nearest subject of the largest face


@dataclass(frozen=True)
class Run:
    side: str
    concurrency: int
    wall_s: float
    outcomes: list[Outcome]
    cpu: CpuUse | None = None


@dataclass(frozen=True)
class Latency:
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


@dataclass(frozen=True)
class RunSummary:
    side: str
    concurrency: int
    images: int
    ok: int
    errors: dict[str, int]
    wall_s: float
    images_per_s: float
    latency_ms: Latency
    faces_found: int
    images_without_face: int
    top1_accuracy: float | None
    top1_evaluated: int
    cpu: CpuUse | None


@dataclass(frozen=True)
class Enrolment:
    enrolled: list[Photo]
    rejected: dict[str, str]  # photo name -> error code
    errors: dict[str, str]  # photo name -> what went wrong (not a 422)
    wall_s: float


# --- inputs ----------------------------------------------------------------------------------


def resized(data: bytes, *, longest: int) -> bytes:
    """The photo as a JPEG (quality 92) whose longest side is `longest` pixels."""
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    scale = longest / max(image.size)
    image = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS
    )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def load_photos(faces_dir: Path, *, photo_set: str = "full") -> dict[str, list[Photo]]:
    """Every image of every identity folder, by identity; `_groups`, `_noface` and hidden folders skipped.

    photo_set "full": the photos at their original size; "640": each one resized to 640 px on its
    longest side (portraits as a phone app sends them).
    """
    if not faces_dir.is_dir():
        raise BenchmarkError(
            f"the faces folder {faces_dir} does not exist: pass --faces DIR, a folder of <identity>/<images> "
            "(the project's shared/faces)."
        )
    photos: dict[str, list[Photo]] = {}
    for folder in sorted(faces_dir.iterdir()):
        if not folder.is_dir() or folder.name.startswith(("_", ".")):
            continue
        images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            photos[folder.name] = [
                Photo(
                    identity=folder.name,
                    name=str(p.relative_to(faces_dir)),
                    data=p.read_bytes() if photo_set == "full" else resized(p.read_bytes(), longest=640),
                )
                for p in images
            ]
    if not photos:
        raise BenchmarkError(f"no identity folders with images in {faces_dir}.")
    return photos


def select_probes(photos: Sequence[Photo], *, limit: int | None, seed: int) -> list[Photo]:
    """All photos, or a seeded random `limit` of them (a prefix would hold only the first few identities)."""
    if limit is None or limit >= len(photos):
        return list(photos)
    return random.Random(seed).sample(list(photos), limit)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_weights(requested: Path | None, *, work_dir: Path) -> Weights:
    """The weights both sides load: the file given, or an untrained one in the release file's format."""
    if requested is not None:
        if not requested.is_file():
            raise BenchmarkError(f"the weights file {requested} does not exist.")
        return Weights(path=requested.resolve(), sha256=sha256_of(requested), untrained=False)
    torch.manual_seed(0)
    model = InceptionResnetV1(pretrained=None, classify=False)
    model.logits = torch.nn.Linear(EMBEDDING_DIM, VGGFACE2_CLASSES)
    path = work_dir / VGGFACE2_WEIGHTS_FILENAME
    torch.save(model.state_dict(), path)
    return Weights(path=path, sha256=sha256_of(path), untrained=True)


def pick_device(requested: str) -> torch.device:
    """The service's rule (auto = CUDA when available), so both sides run on the same device."""
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info(device: torch.device) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "numpy": np.__version__,
        "facenet_pytorch": importlib.metadata.version("facenet-pytorch"),
        "git_commit": git_commit(),
    }


# --- (a) the service -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_tail(path: Path, *, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def service_environment(
    *, port: int, data_dir: Path, weights: Weights, device: str
) -> tuple[dict[str, str], dict[str, str]]:
    """The subprocess environment, and the FACEREC_* settings in it that this script did not choose."""
    env = {key: value for key, value in os.environ.items() if key not in CONTROLLED_ENV}
    passed_through = {key: value for key, value in env.items() if key.startswith("FACEREC_")}
    env.update(
        {
            "FACEREC_HOST": "127.0.0.1",
            "FACEREC_PORT": str(port),
            "FACEREC_DATA_DIR": str(data_dir),
            "FACEREC_MODEL_DIR": str(data_dir / "models"),
            "FACEREC_WEIGHTS_PATH": str(weights.path),
            "FACEREC_WEIGHTS_SHA256": weights.sha256,
            "FACEREC_ALLOW_DOWNLOAD": "false",
            "FACEREC_DEVICE": device,
            # Throughput, not the per-key limiter, is measured: one key sends every request.
            "FACEREC_RATE_LIMIT_IDENTIFY_PER_MINUTE": "0",
            "FACEREC_RATE_LIMIT_ENROLL_PER_MINUTE": "0",
        }
    )
    return env, passed_through


def wait_ready(process: subprocess.Popen[bytes], *, base_url: str, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchmarkError(
                    f"`facerec serve` exited with status {process.returncode} before it was ready; "
                    f"its log ends:\n{log_tail(log_path)}"
                )
            try:
                response = client.get("/readyz")
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.TransportError as error:
                last = type(error).__name__
            time.sleep(0.25)
    raise BenchmarkError(
        f"`facerec serve` was not ready after {timeout_s:.0f}s (last /readyz: {last}); its log ends:\n"
        f"{log_tail(log_path)}"
    )


def stop_stray_postgres(pgdata: Path, *, timeout_s: float = 30.0) -> None:
    """Stop a Postgres left running on pgdata (only when the service had to be killed)."""
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    print(f"stopping the embedded Postgres (pid {pid}) the service left running", file=sys.stderr)
    deadline = time.monotonic() + timeout_s
    try:
        os.kill(pid, signal.SIGINT)  # Postgres "fast" shutdown
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_file.exists():
            os.kill(pid, signal.SIGQUIT)  # "immediate" shutdown
    except ProcessLookupError:
        pass


def stop_service(process: subprocess.Popen[bytes], *, pgdata: Path, timeout_s: float) -> None:
    """SIGTERM (uvicorn's graceful shutdown runs the lifespan, which stops Postgres); kill after timeout_s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            print(f"`facerec serve` did not exit {timeout_s:g}s after SIGTERM: killing it", file=sys.stderr)
            process.kill()
            process.wait()
    stop_stray_postgres(pgdata)


@contextmanager
def running_service(
    *,
    work_dir: Path,
    weights: Weights,
    device: str,
    startup_timeout_s: float,
    shutdown_timeout_s: float,
    faces_dir: Path = DEFAULT_FACES_DIR,
) -> Iterator[tuple[str, dict[str, str]]]:
    """`facerec serve` on a free port with its own embedded Postgres; yields its URL and passed-through settings."""
    port = free_port()
    data_dir = work_dir / "data"
    log_path = work_dir / "service.log"
    env, passed_through = service_environment(port=port, data_dir=data_dir, weights=weights, device=device)
    if env.get("FACEREC_EMBEDDING_PRECISION") == "int8":
        # The opt-in int8 embedder must be made first, as the README says, from face photos.
        print(f"making the int8 embedder: facerec models quantize {faces_dir}")
        subprocess.run(
            [sys.executable, "-m", "app.cli", "models", "quantize", str(faces_dir)],
            cwd=work_dir,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    # `uv run facerec serve` is this interpreter running app.cli. The working directory is the
    # temporary one so that a .env in the checkout cannot point the service at another database.
    # Its own session, so that a Ctrl-C here reaches it once, as our SIGTERM, not twice.
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            cwd=work_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            started = time.perf_counter()
            wait_ready(process, base_url=base_url, timeout_s=startup_timeout_s, log_path=log_path)
            print(f"service ready on {base_url} after {time.perf_counter() - started:.1f}s")
            yield base_url, passed_through
        finally:
            stop_service(process, pgdata=data_dir / "pgdata", timeout_s=shutdown_timeout_s)
            print(f"service stopped (exit status {process.returncode})")


def first_run_key(log_path: Path, *, timeout_s: float) -> str:
    """The admin key a fresh embedded-database service prints once on its console."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(r"frk_[0-9a-f]{10}_[A-Za-z0-9_-]{43}", log_path.read_text(errors="replace"))
        if found:
            return found.group(0)
        time.sleep(0.2)
    raise SystemExit(f"the service printed no first-run API key within {timeout_s:g}s; log:\n{log_tail(log_path)}")


def error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


def enrol_gallery(client: httpx.Client, gallery: Sequence[Photo]) -> Enrolment:
    enrolled: list[Photo] = []
    rejected: dict[str, str] = {}
    errors: dict[str, str] = {}
    started = time.perf_counter()
    for photo in gallery:
        try:
            response = client.post(
                "/enroll",
                files={"image": (Path(photo.name).name, photo.data)},
                # allow: with the untrained weights every face is alike, and the duplicate-identity
                # guard would refuse every identity after the first; the gallery is one photo each.
                data={"subject": photo.identity, "on_multiple_faces": "largest", "on_conflict": "allow"},
            )
        except httpx.HTTPError as error:
            errors[photo.name] = type(error).__name__
            continue
        if response.status_code in (200, 201):
            enrolled.append(photo)
        elif response.status_code == 422:
            rejected[photo.name] = error_code(response)
        else:
            errors[photo.name] = f"HTTP {response.status_code} {error_code(response)}"
    return Enrolment(enrolled=enrolled, rejected=rejected, errors=errors, wall_s=time.perf_counter() - started)


def identify_once(client: httpx.Client, photo: Photo) -> Outcome:
    started = time.perf_counter()
    try:
        response = client.post("/identify", files={"image": (Path(photo.name).name, photo.data)})
    except httpx.HTTPError as error:
        return Outcome(latency_s=time.perf_counter() - started, ok=False, error=type(error).__name__)
    latency = time.perf_counter() - started
    if response.status_code != 200:
        return Outcome(latency_s=latency, ok=False, error=f"HTTP {response.status_code} {error_code(response)}")
    faces = response.json()["faces"]
    nearest = str(faces[0]["candidates"][0]["subject"]) if faces and faces[0]["candidates"] else None
    return Outcome(latency_s=latency, ok=True, faces=len(faces), nearest=nearest)


def identify_via_service(client: httpx.Client, probes: Sequence[Photo], *, concurrency: int) -> Run:
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="identify-client") as pool:
        started = time.perf_counter()
        outcomes = list(pool.map(lambda photo: identify_once(client, photo), probes))
        wall_s = time.perf_counter() - started
    return Run(side="service", concurrency=concurrency, wall_s=wall_s, outcomes=outcomes)


def benchmark_service(
    *,
    args: argparse.Namespace,
    work_dir: Path,
    weights: Weights,
    gallery: Sequence[Photo],
    probes: Sequence[Photo],
    concurrencies: Sequence[int],
) -> tuple[Enrolment, list[Run], dict[str, str]]:
    print("starting `facerec serve` ...")
    with running_service(
        work_dir=work_dir,
        weights=weights,
        device=args.device,
        startup_timeout_s=args.startup_timeout,
        shutdown_timeout_s=args.shutdown_timeout,
        faces_dir=args.faces.expanduser().resolve(),
    ) as (base_url, passed_through):
        limits = httpx.Limits(max_connections=max(concurrencies), max_keepalive_connections=max(concurrencies))
        # Authentication stays on, as in production: the key check is part of every request's cost.
        headers = {"Authorization": f"Bearer {first_run_key(work_dir / 'service.log', timeout_s=60)}"}
        with httpx.Client(base_url=base_url, timeout=args.request_timeout, limits=limits, headers=headers) as client:
            enrolment = enrol_gallery(client, gallery)
            print(
                f"enrolled {len(enrolment.enrolled)} of {len(gallery)} identities in {enrolment.wall_s:.1f}s "
                f"({len(enrolment.rejected)} rejected with 422, {len(enrolment.errors)} errors)"
            )
            if not enrolment.enrolled:
                raise BenchmarkError(
                    f"no gallery photo was enrolled: rejected {enrolment.rejected}, errors {enrolment.errors}"
                )
            for photo in probes[: args.warmup]:
                identify_once(client, photo)
            meter = CpuMeter(service=service_pid(), pgdata=work_dir / "data" / "pgdata")
            runs: list[Run] = []
            for concurrency in concurrencies:
                before = meter.snapshot()
                run = identify_via_service(client, probes, concurrency=concurrency)
                run = replace(run, cpu=meter.since(before, images=len(run.outcomes)))
                print(f"service, concurrency {concurrency}: {progress_line(run)}")
                runs.append(run)
    return enrolment, runs, passed_through


# --- (b) the plain library loop --------------------------------------------------------------


class PlainFacenet:
    """facenet-pytorch as its README uses it: MTCNN(keep_all=True) detect + extract, then InceptionResnetV1."""

    def __init__(self, *, weights_path: Path, device: torch.device) -> None:
        self.device = device
        # image_size=160, margin=0, post_process=True: the library's standard crops
        self.detector = MTCNN(keep_all=True, device=device)
        state: dict[str, torch.Tensor] = torch.load(weights_path, map_location="cpu", weights_only=True)
        self.embedder = InceptionResnetV1(pretrained=None, classify=False)
        if "logits.weight" in state:  # the release file carries the VGGFace2 classifier
            self.embedder.logits = torch.nn.Linear(EMBEDDING_DIM, state["logits.weight"].shape[0])
        self.embedder.load_state_dict(state)
        self.embedder.eval().to(device)

    def embed(self, data: bytes) -> Embeddings:
        """One L2-normalised embedding per face, largest face first."""
        image = Image.open(io.BytesIO(data)).convert("RGB")
        with torch.inference_mode():
            boxes, _probs = self.detector.detect(image)
            if boxes is None:
                return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
            crops = self.detector.extract(image, boxes, None)
            embeddings = self.embedder(crops.to(self.device))
        return np.ascontiguousarray(embeddings.cpu().numpy(), dtype=np.float32)


def identify_with_library(
    pipeline: PlainFacenet, photo: Photo, *, gallery: Embeddings, names: Sequence[str]
) -> Outcome:
    started = time.perf_counter()
    try:
        embeddings = pipeline.embed(photo.data)
        similarities = embeddings @ gallery.T  # unit vectors: dot product = cosine similarity
        ranked = np.argsort(-similarities, axis=1)[:, :TOP_K]
    except Exception as error:
        return Outcome(latency_s=time.perf_counter() - started, ok=False, error=type(error).__name__)
    latency = time.perf_counter() - started
    nearest = names[int(ranked[0, 0])] if len(ranked) else None
    return Outcome(latency_s=latency, ok=True, faces=len(embeddings), nearest=nearest)


def benchmark_library(
    *,
    args: argparse.Namespace,
    weights: Weights,
    device: torch.device,
    enrolled: Sequence[Photo],
    probes: Sequence[Photo],
) -> tuple[Run, dict[str, Any]]:
    pipeline = PlainFacenet(weights_path=weights.path, device=device)
    rows: list[Embeddings] = []
    names: list[str] = []
    without_face: list[str] = []
    for photo in enrolled:  # the identities the service enrolled, embedded the library's way
        embeddings = pipeline.embed(photo.data)
        if len(embeddings):
            rows.append(embeddings[0])
            names.append(photo.identity)
        else:
            without_face.append(photo.name)
    if not rows:
        raise BenchmarkError("the library found no face in any gallery photo.")
    gallery = np.stack(rows)
    for photo in probes[: args.warmup]:
        identify_with_library(pipeline, photo, gallery=gallery, names=names)
    outcomes: list[Outcome] = []
    cpu_before, ticks_before = process_cpu_s(), machine_ticks()
    started = time.perf_counter()
    for photo in probes:
        outcomes.append(identify_with_library(pipeline, photo, gallery=gallery, names=names))
    wall_s = time.perf_counter() - started
    all_ticks, idle_ticks = (after - before for after, before in zip(machine_ticks(), ticks_before, strict=True))
    cpu = CpuUse(
        service_ms_per_image=round((process_cpu_s() - cpu_before) * 1000.0 / len(probes), 1),
        postgres_ms_per_image=None,
        machine_busy=round(1.0 - idle_ticks / all_ticks, 3) if all_ticks > 0 else 0.0,
    )
    run = Run(side="library", concurrency=1, wall_s=wall_s, outcomes=outcomes, cpu=cpu)
    print(f"library loop: {progress_line(run)}")
    return run, {"identities": len(names), "gallery_photos_without_face": without_face}


def process_cpu_s() -> float:
    """CPU time of this process (the plain loop runs here), user + system, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- figures ---------------------------------------------------------------------------------


def latency_ms(latencies: Sequence[float]) -> Latency:
    if not latencies:
        return Latency(mean=None, p50=None, p95=None, p99=None, max=None)
    ms = np.asarray(latencies, dtype=np.float64) * 1000.0
    p50, p95, p99 = (round(float(v), 1) for v in np.percentile(ms, [50, 95, 99]))
    return Latency(mean=round(float(ms.mean()), 1), p50=p50, p95=p95, p99=p99, max=round(float(ms.max()), 1))


def summarise(run: Run, *, probes: Sequence[Photo], evaluable: Sequence[bool]) -> RunSummary:
    ok = [outcome for outcome in run.outcomes if outcome.ok]
    errors = Counter(outcome.error or "?" for outcome in run.outcomes if not outcome.ok)
    judged = [
        outcome.ok and outcome.nearest == photo.identity
        for outcome, photo, counts in zip(run.outcomes, probes, evaluable, strict=True)
        if counts
    ]
    return RunSummary(
        side=run.side,
        concurrency=run.concurrency,
        images=len(run.outcomes),
        ok=len(ok),
        errors=dict(errors),
        wall_s=round(run.wall_s, 3),
        images_per_s=round(len(ok) / run.wall_s, 3) if run.wall_s > 0 else 0.0,
        latency_ms=latency_ms([outcome.latency_s for outcome in ok]),
        faces_found=sum(outcome.faces for outcome in ok),
        images_without_face=sum(1 for outcome in ok if outcome.faces == 0),
        top1_accuracy=round(sum(judged) / len(judged), 4) if judged else None,
        top1_evaluated=len(judged),
        cpu=run.cpu,
    )


def per_image_latencies(runs: Sequence[Run], *, probes: Sequence[Photo]) -> list[dict[str, Any]]:
    """Each probe's latency in every run (None where it failed): which images are slow, and on which side."""
    rows: list[dict[str, Any]] = [{"probe": photo.name} for photo in probes]
    for run in runs:
        key = f"{run.side}_c{run.concurrency}"
        for row, outcome in zip(rows, run.outcomes, strict=True):
            row[key] = round(outcome.latency_s * 1000.0, 1) if outcome.ok else None
    return rows


def progress_line(run: Run) -> str:
    ok = sum(outcome.ok for outcome in run.outcomes)
    rate = ok / run.wall_s if run.wall_s > 0 else 0.0
    return f"{ok}/{len(run.outcomes)} ok in {run.wall_s:.1f}s = {rate:.2f} images/s"


def format_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def print_table(summaries: Sequence[RunSummary], ratios: Sequence[dict[str, Any]], *, untrained: bool) -> None:
    header = (
        f"{'side':<8} {'conc':>4} {'images':>6} {'ok':>4} {'errors':>6} {'images/s':>9} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'top-1':>6} {'CPU ms/img':>10} {'+pg':>5} {'busy':>5}"
    )
    print()
    print(header)
    print("-" * len(header))
    for s in summaries:
        top1 = "-" if s.top1_accuracy is None else f"{s.top1_accuracy:.2f}"
        cpu = format_ms(s.cpu.service_ms_per_image) if s.cpu else "-"
        postgres = format_ms(s.cpu.postgres_ms_per_image) if s.cpu else "-"
        busy = f"{s.cpu.machine_busy:.0%}" if s.cpu else "-"
        print(
            f"{s.side:<8} {s.concurrency:>4} {s.images:>6} {s.ok:>4} {sum(s.errors.values()):>6} "
            f"{s.images_per_s:>9.2f} {format_ms(s.latency_ms.p50):>7} {format_ms(s.latency_ms.p95):>7} "
            f"{format_ms(s.latency_ms.p99):>7} {top1:>6} {cpu:>10} {postgres:>5} {busy:>5}"
        )
    print()
    for ratio in ratios:
        value = ratio["service_over_library"]
        shown = "-" if value is None else f"{value:.2f}x"
        print(f"service/library images/s at concurrency {ratio['concurrency']}: {shown}")
    for s in summaries:
        if s.errors:
            print(f"errors ({s.side}, concurrency {s.concurrency}): {s.errors}")
    if untrained:
        print()
        print(UNTRAINED_NOTE)


# --- the run ---------------------------------------------------------------------------------


def add_photo_arguments(parser: argparse.ArgumentParser, *, default_set: str) -> None:
    """--faces, --set, --limit and --seed: which photos a benchmark sends (load_photos, select_probes)."""
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES_DIR, help="folder of <identity>/<images>")
    parser.add_argument(
        "--set",
        dest="photo_set",
        choices=["full", "640"],
        default=default_set,
        help="full: the photos at their original size; 640: resized to 640 px on the longest side",
    )
    parser.add_argument("--limit", type=positive_int, help="probe at most N images (a seeded random sample)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --limit sample")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.identify_throughput",
        description="POST /identify of `facerec serve` against a plain facenet-pytorch loop, same images.",
    )
    add_photo_arguments(parser, default_set="full")
    parser.add_argument(
        "--concurrency", type=parse_ints, default=[1, 4, 8, 16], help="client concurrencies, e.g. 1,4,8,16"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=torch.get_num_threads(),
        help="torch threads of the plain loop (default: torch's own choice); the service uses its settings "
        "(FACEREC_INFERENCE_WORKERS, FACEREC_TORCH_THREADS from the environment, else its defaults)",
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="both sides")
    env_weights = os.environ.get("FACEREC_WEIGHTS_PATH")
    parser.add_argument(
        "--weights",
        type=Path,
        default=Path(env_weights) if env_weights else None,
        help="InceptionResnetV1 weights (default FACEREC_WEIGHTS_PATH; none: untrained, speed only)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed identify calls per side before measuring")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds to wait for /readyz")
    parser.add_argument("--shutdown-timeout", type=float, default=60.0, help="seconds between SIGTERM and kill")
    parser.add_argument("--request-timeout", type=float, default=300.0, help="seconds per HTTP request")
    return parser


def run_benchmark(args: argparse.Namespace) -> int:
    faces_dir: Path = args.faces.expanduser().resolve()
    photos = load_photos(faces_dir, photo_set=args.photo_set)
    gallery = [images[0] for images in photos.values()]
    probes = select_probes([photo for images in photos.values() for photo in images], limit=args.limit, seed=args.seed)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    print(
        f"{len(photos)} identities in {faces_dir}; {len(probes)} probe images; concurrency {args.concurrency}; "
        f"{args.threads} torch threads in the plain loop; device {device}"
    )

    with tempfile.TemporaryDirectory(prefix="facerec-bench-", ignore_cleanup_errors=True) as temp:
        work_dir = Path(temp)
        weights = prepare_weights(args.weights, work_dir=work_dir)
        if weights.untrained:
            print(UNTRAINED_NOTE)
        # The service first: the library's gallery is the identities the service accepted.
        enrolment, service_runs, passed_through = benchmark_service(
            args=args,
            work_dir=work_dir,
            weights=weights,
            gallery=gallery,
            probes=probes,
            concurrencies=args.concurrency,
        )
        library_run, library_gallery = benchmark_library(
            args=args, weights=weights, device=device, enrolled=enrolment.enrolled, probes=probes
        )

    gallery_names = {photo.name for photo in enrolment.enrolled}
    enrolled_identities = {photo.identity for photo in enrolment.enrolled}
    # Top-1 only over probes that are not themselves gallery photos and whose person is enrolled.
    evaluable = [photo.name not in gallery_names and photo.identity in enrolled_identities for photo in probes]
    service = [summarise(run, probes=probes, evaluable=evaluable) for run in service_runs]
    library = summarise(library_run, probes=probes, evaluable=evaluable)
    ratios = [
        {
            "concurrency": s.concurrency,
            "service_over_library": round(s.images_per_s / library.images_per_s, 3) if library.images_per_s else None,
        }
        for s in service
    ]
    detect_max_side = os.environ.get("FACEREC_DETECT_MAX_SIDE", Settings.model_fields["detect_max_side"].default)
    detector_min_face = os.environ.get(
        "FACEREC_DETECTOR_MIN_FACE_PX", Settings.model_fields["detector_min_face_px"].default
    )
    notes = [
        "Latency is per image, measured by the client: for the service from sending the request to reading the "
        "response (decode, detect, embed, pgvector search, HTTP); for the library from the bytes in memory to "
        "the numpy ranking.",
        "CPU ms/img is the CPU time (user + system, all threads) the service process spent per image during the "
        "run, +pg that of its embedded Postgres, busy the share of all the machine's cores in use (the client "
        "included). For the library it is this script's own CPU time. CPU ms/img x images/s / 1000 is the cores "
        "a rate needs.",
        f"The service downscales images to FACEREC_DETECT_MAX_SIDE ({detect_max_side} px) and looks for faces "
        f"from FACEREC_DETECTOR_MIN_FACE_PX ({detector_min_face} px) there, and applies EXIF orientation; the "
        "plain loop detects at full size with MTCNN's default 20 px minimum. Both embed at most the faces found "
        "(service: up to 10).",
        "Top-1 accuracy counts probes that are not gallery photos and whose identity was enrolled.",
    ]
    if weights.untrained:
        notes.insert(0, UNTRAINED_NOTE)
    report = {
        "benchmark": "identify_throughput",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(device),
        "settings": {
            "faces_dir": str(faces_dir),
            "photo_set": args.photo_set,
            "limit": args.limit,
            "seed": args.seed,
            "concurrency": args.concurrency,
            "library_torch_threads": args.threads,
            "device": args.device,
            "warmup": args.warmup,
            "service_command": [sys.executable, "-m", "app.cli", "serve"],
            "service_settings_passed_through": passed_through,
        },
        "weights": {
            "path": None if weights.untrained else str(weights.path),
            "sha256": weights.sha256,
            "untrained": weights.untrained,
            "is_vggface2_release": weights.sha256 == VGGFACE2_WEIGHTS_SHA256,
        },
        "notes": notes,
        "gallery": {
            "identities": len(gallery),
            "enrolled": len(enrolment.enrolled),
            "rejected_422": len(enrolment.rejected),
            "rejections": enrolment.rejected,
            "errors": enrolment.errors,
            "enrol_wall_s": round(enrolment.wall_s, 3),
            "library": library_gallery,
        },
        "probes": [photo.name for photo in probes],
        "per_image_latency_ms": per_image_latencies([*service_runs, library_run], probes=probes),
        "service": [asdict(s) for s in service],
        "library": asdict(library),
        "ratio": ratios,
    }
    print_table([*service, library], ratios, untrained=weights.untrained)
    write_report(args.out, report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("identify_throughput", build_parser, run_benchmark, argv)


if __name__ == "__main__":
    raise SystemExit(main())
