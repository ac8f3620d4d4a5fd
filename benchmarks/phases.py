"""Where the CPU of one POST /identify goes, phase by phase, in one process.

Each photo of a set (``../shared/faces`` at full size, or each resized to 640 px) goes through the
pieces the service runs for ``POST /identify``, one after another, each timed on its own:

- multipart: Starlette parsing the form with python-multipart, as FastAPI does before the route;
- decode: the JPEG decoded only as finely as detection needs (app.engine.decode);
- detect: MTCNN on that decode (one thread, as each inference worker runs it);
- crop: a finer decode where a face is narrow, and the 160x160 crops;
- quality: the measures of every face (sharpness, pose, exposure);
- embed: the faces' embeddings in one call (on every core, as the batcher makes it);
- key check: KeyService.authenticate (a transaction: the key's row, the digest compared, the
  rate-limit take);
- search: the nearest subjects (HNSW) over a gallery of synthetic faces, opening the transaction;
- audit: the audit row, and the commit of that transaction;
- json: the response model built from the result and serialised.

Then the whole ``RecognitionService.identify`` runs on the same photo (inference pool, batcher,
search, audit), so that the sum of the parts can be checked against it. What this process cannot
see is the HTTP server (uvicorn, routing, dependencies): the identify benchmark's CPU per image,
less this total, is that.

CPU is this process's (all threads: ONNX Runtime's pools included, nothing else runs) and, for the
phases that reach the database, its Postgres's (all its processes).

    uv run python -m benchmarks.phases --set 640
    uv run python -m benchmarks.phases --set full --limit 100

Without --weights (or FACEREC_WEIGHTS_PATH) the embedder is an untrained InceptionResnetV1 in the
release file's format: the same arithmetic, so the same speed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request

from app.api import convert
from app.composition import build_services, database_url, image_limits, make_database, open_engine
from app.config import Settings
from app.db.records import NewFace
from app.engine.decode import ImageLimits
from app.engine.engine import FaceEngine
from app.engine.quality import measure_all
from app.services.access import SYSTEM, Scope
from app.services.container import Services
from app.services.recognition import IdentifyRequest
from benchmarks.common import BenchmarkError, positive_int, run_main, write_report
from benchmarks.identify_throughput import (
    Photo,
    add_photo_arguments,
    load_photos,
    machine_info,
    pick_device,
    prepare_weights,
    select_probes,
)
from benchmarks.processes import cpu_seconds, postgres_pids

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"
COLLECTION = "default"
TOP_K = 3
MAX_FACES = 10  # the form's default
PHASES = ("multipart", "decode", "detect", "crop", "quality", "embed", "key check", "search", "audit", "json")
TOTAL = "whole identify call"
BOUNDARY = "facerec-benchmark-boundary"


@dataclass(frozen=True)
class Span:
    """CPU and wall seconds of one timed stretch."""

    cpu_s: float
    wall_s: float
    postgres_s: float = 0.0


@dataclass(frozen=True)
class Mark:
    cpu_s: float
    wall_s: float
    postgres_s: float | None  # None: Postgres is not charged


@dataclass
class Phase:
    """The spans of one phase, one per photo that ran it."""

    spans: list[Span] = field(default_factory=list)

    def as_dict(self, *, photos: int) -> dict[str, Any]:
        per_photo = 1000.0 / max(photos, 1)
        walls = [span.wall_s * 1000 for span in self.spans]
        return {
            "calls": len(self.spans),
            "cpu_ms_per_photo": round(sum(span.cpu_s for span in self.spans) * per_photo, 3),
            "postgres_cpu_ms_per_photo": round(sum(span.postgres_s for span in self.spans) * per_photo, 3),
            "wall_ms_per_photo": round(sum(walls) / max(photos, 1), 3),
            "wall_p50_ms": round(float(np.percentile(walls, 50)), 3) if walls else None,
        }


class PhaseClock:
    """Charges the CPU of this process (and of Postgres, for database phases) to named phases."""

    def __init__(self, *, pgdata: Path | None) -> None:
        self._pgdata = pgdata
        self.phases: dict[str, Phase] = {name: Phase() for name in (*PHASES, TOTAL)}
        self.counting = True

    def _postgres_s(self) -> float:
        pids = postgres_pids(self._pgdata) if self._pgdata is not None else None
        return sum(cpu_seconds(pid) for pid in pids or [])

    def start(self, *, database: bool = False) -> Mark:
        # Postgres's /proc is read outside the timed span, so reading it costs the span nothing.
        postgres = self._postgres_s() if database else None
        return Mark(cpu_s=time.process_time(), wall_s=time.perf_counter(), postgres_s=postgres)

    def stop(self, mark: Mark) -> Span:
        cpu, wall = time.process_time() - mark.cpu_s, time.perf_counter() - mark.wall_s
        postgres = 0.0 if mark.postgres_s is None else self._postgres_s() - mark.postgres_s
        return Span(cpu_s=cpu, wall_s=wall, postgres_s=postgres)

    def charge(self, name: str, span: Span) -> None:
        if self.counting:
            self.phases[name].spans.append(span)

    @contextmanager
    def phase(self, name: str, *, database: bool = False) -> Iterator[None]:
        mark = self.start(database=database)
        yield
        self.charge(name, self.stop(mark))


def multipart_body(photo: Photo) -> bytes:
    """The form a client sends to /identify: the collection and the photo."""
    return b"".join(
        [
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="collection"\r\n\r\n{COLLECTION}\r\n'.encode(),
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="probe.jpg"\r\n'.encode(),
            b"Content-Type: image/jpeg\r\n\r\n",
            photo.data,
            f"\r\n--{BOUNDARY}--\r\n".encode(),
        ]
    )


async def parse_form(body: bytes) -> bytes:
    """The upload's bytes, parsed from the multipart body as FastAPI's form dependencies parse it."""
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/identify",
        "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())],
    }
    async with Request(scope, receive).form() as form:
        upload = form["image"]
        if isinstance(upload, str):
            raise AssertionError("the image part parsed as a plain field")
        return await upload.read()


async def enrol_synthetic_gallery(services: Services, *, identities: int, model_id: str, seed: int) -> None:
    """identities subjects with 3 random unit embeddings each, straight into the tables."""
    generator = np.random.default_rng(seed)
    async with services.database.transaction() as repository:
        collection_id = await repository.ensure_collection(COLLECTION)
        for index in range(identities):
            subject_id, _ = await repository.ensure_subject(
                collection_id=collection_id, name=f"person-{index:05d}", metadata=None
            )
            for sample in range(3):
                vector = generator.standard_normal(512).astype(np.float32)
                await repository.add_face(
                    NewFace(
                        subject_id=subject_id,
                        collection_id=collection_id,
                        embedding=vector / np.linalg.norm(vector),
                        box=(0.0, 0.0, 100.0, 100.0),
                        landmarks=(),
                        detection_probability=1.0,
                        model_id=model_id,
                        image_sha256=f"{index:05d}-{sample}".ljust(64, "0"),
                    )
                )


async def time_one_photo(
    services: Services, clock: PhaseClock, *, engine: FaceEngine, limits: ImageLimits, photo: Photo, token: str
) -> None:
    if services.recognition is None:
        raise BenchmarkError("the services were built without an engine")
    body = multipart_body(photo)
    with clock.phase("multipart"):
        data = await parse_form(body)
    with clock.phase("decode"):
        decoded = engine.decode(data, limits=limits)
    with clock.phase("detect"):
        faces = engine.locate(decoded)[:MAX_FACES]
    with clock.phase("crop"):
        crops = engine.cut(data, decoded=decoded, faces=faces, limits=limits)
    with clock.phase("quality"):
        measure_all(faces, crops=crops)
    embeddings = np.zeros((0, 512), dtype=np.float32)
    if faces:
        with clock.phase("embed"):
            embeddings = engine.embed(crops)
    with clock.phase("key check", database=True):
        principal = await services.keys.authenticate(token, scope=Scope.IDENTIFY)
    entry = principal.audit("identify", collection=COLLECTION)
    # One transaction, as in the service: the search opens it, the audit row and the commit close it.
    mark = clock.start(database=True)
    async with services.database.transaction() as repository:
        nearest = await repository.nearest_subjects(
            collection=COLLECTION,
            model_id=engine.model_id,
            embeddings=list(embeddings),
            top_k=TOP_K,
            ef_search=services.recognition.policy.hnsw_ef_search,
        )
        if nearest is None:
            raise BenchmarkError(f"the collection {COLLECTION!r} has gone")
        clock.charge("search", clock.stop(mark))
        mark = clock.start(database=True)
        await repository.append_audit(replace(entry, details={"faces": len(embeddings), "matched": 0}))
    clock.charge("audit", clock.stop(mark))
    request = IdentifyRequest(data=data, collection=COLLECTION, top_k=TOP_K, max_faces=MAX_FACES)
    with clock.phase(TOTAL, database=True):
        result = await services.recognition.identify(request, principal=principal)
    with clock.phase("json"):
        convert.identify_response(result).model_dump_json()


def service_settings(*, work_dir: Path, weights_path: Path, weights_sha256: str, device: str) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=work_dir,
        model_dir=work_dir / "models",
        weights_path=weights_path,
        weights_sha256=weights_sha256,
        allow_download=False,
        device=device,
        # A limit no run reaches: the rate-limit take is timed with the key check, and never refuses.
        rate_limit_identify_per_minute=1_000_000,
    )


async def measure(args: argparse.Namespace, *, probes: Sequence[Photo], work_dir: Path) -> dict[str, Any]:
    weights = prepare_weights(args.weights, work_dir=work_dir)
    settings = service_settings(
        work_dir=work_dir, weights_path=weights.path, weights_sha256=weights.sha256, device=args.device
    )
    engine = await asyncio.to_thread(open_engine, settings)
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(database_url(settings))
        database = make_database(settings, url=url)
        stack.push_async_callback(database.engine.dispose)
        await database.prepare(migrate=True)
        services = build_services(settings, database=database, engine=engine, stack=stack)
        await enrol_synthetic_gallery(services, identities=args.identities, model_id=engine.model_id, seed=args.seed)
        issued = await services.keys.create(
            name="benchmark", scopes=[Scope.IDENTIFY], collections=None, principal=SYSTEM
        )
        clock = PhaseClock(pgdata=settings.embedded_pgdata if settings.database_url is None else None)
        timed = functools.partial(
            time_one_photo, services, clock, engine=engine, limits=image_limits(settings), token=issued.token
        )
        clock.counting = False
        for photo in probes[: args.warmup]:
            await timed(photo=photo)
        clock.counting = True
        for index, photo in enumerate(probes, start=1):
            await timed(photo=photo)
            if index % 50 == 0:
                print(f"  {index}/{len(probes)} photos", flush=True)
    return {
        "untrained_weights": weights.untrained,
        "phases": {name: phase.as_dict(photos=len(probes)) for name, phase in clock.phases.items()},
    }


def print_table(report: dict[str, Any]) -> None:
    phases = report["phases"]
    print(f"\nCPU per photo, {report['photos']} photos of the {report['photo_set']} set (ms)")
    print(f"{'phase':<22} {'calls':>6} {'CPU':>8} {'+pg':>6} {'wall':>8} {'wall p50':>9}")
    for name in (*PHASES, TOTAL):
        row = phases[name]
        if name == TOTAL:
            parts = sum(phases[p]["cpu_ms_per_photo"] for p in PHASES if p not in ("multipart", "key check", "json"))
            print(f"{'sum of decode..audit':<22} {'':>6} {parts:>8.2f}")
        p50 = "-" if row["wall_p50_ms"] is None else f"{row['wall_p50_ms']:.2f}"
        print(
            f"{name:<22} {row['calls']:>6} {row['cpu_ms_per_photo']:>8.2f} {row['postgres_cpu_ms_per_photo']:>6.2f}"
            f" {row['wall_ms_per_photo']:>8.2f} {p50:>9}"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.phases", description=__doc__.split("\n\n")[0])
    add_photo_arguments(parser, default_set="640")
    parser.add_argument("--warmup", type=int, default=5, help="untimed photos first")
    parser.add_argument("--identities", type=positive_int, default=1000, help="synthetic subjects in the gallery")
    parser.add_argument("--weights", type=Path, default=None, help="InceptionResnetV1 VGGFace2 state_dict")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default results/phases_<set>.json)")
    return parser


def run_benchmark(args: argparse.Namespace) -> int:
    if args.weights is None and os.environ.get("FACEREC_WEIGHTS_PATH"):
        args.weights = Path(os.environ["FACEREC_WEIGHTS_PATH"])
    photos = load_photos(args.faces, photo_set=args.photo_set)
    probes = select_probes([p for group in photos.values() for p in group], limit=args.limit, seed=args.seed)
    random.Random(args.seed).shuffle(probes)
    with tempfile.TemporaryDirectory(prefix="facerec-phases-") as work:
        measured = asyncio.run(measure(args, probes=probes, work_dir=Path(work)))
    report = {
        "benchmark": "phases",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(pick_device(args.device)),
        "photo_set": args.photo_set,
        "photos": len(probes),
        "identities": args.identities,
        **measured,
    }
    print_table(report)
    write_report(args.out or DEFAULT_OUT / f"phases_{args.photo_set}.json", report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("phases", build_parser, run_benchmark, argv)


if __name__ == "__main__":
    raise SystemExit(main())
