"""The `facerec` command: serve, db, models, enroll-dir, identify."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from app.config import Settings
from app.db.hnsw import HnswOptions
from app.db.session import Database
from app.errors import FacerecError, WeightsUnavailableError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.main import create_app
    from app.services.weights import resolve_weights, weights_source

    # Check the weights before binding the port, so a missing file is one clear paragraph.
    resolve_weights(weights_source(settings), allow_download=settings.allow_download)
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        log_level=args.log_level or settings.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


@contextmanager
def _database_url(settings: Settings) -> Iterator[str]:
    """FACEREC_DATABASE_URL, or the embedded Postgres started for the length of the command."""
    from app.db.embedded import EmbeddedPostgres

    if settings.database_url is not None:
        yield settings.database_url
        return
    server = EmbeddedPostgres(settings.embedded_pgdata, port=settings.embedded_db_port)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from app.db import session as db

    with _database_url(settings) as url:
        if args.db_command == "reindex":
            return _reindex(url, settings)
        if args.db_command == "upgrade":
            db.upgrade(url, revision=args.revision, hnsw=HnswOptions.of(settings))
        else:
            db.downgrade(url, revision=args.revision)
    print(f"database schema {args.db_command}d to {args.revision}")
    return 0


def _reindex(url: str, settings: Settings) -> int:
    from app.db import hnsw
    from app.db.session import normalise_url

    try:
        before, seconds = hnsw.rebuild(normalise_url(url), HnswOptions.of(settings))
    except LookupError as error:
        print(f"facerec: {error}", file=sys.stderr)
        return 1
    was = before.sql() if before else "no options"
    print(f"HNSW index rebuilt with {HnswOptions.of(settings).sql()} (was {was}) in {seconds:.1f}s")
    return 0


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    """A migrated database without the face model: key management and purges need no torch."""
    from app.db import session as db

    with _database_url(settings) as url:
        engine = db.make_engine(
            url,
            pool_size=1,
            max_overflow=1,
            connect_timeout_s=settings.db_connect_timeout_s,
            statement_timeout_s=settings.db_statement_timeout_s,
        )
        database = db.Database(engine, url=url, hnsw=HnswOptions.of(settings))
        try:
            await asyncio.wait_for(database.prepare(migrate=settings.migrate_on_start), timeout=120)
            yield database
        finally:
            await engine.dispose()


async def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.access import KeyService, Scope

    async with _database(settings) as database:
        keys = KeyService(database=database)
        if args.keys_command == "create":
            issued = await keys.create(
                name=args.name, scopes=[Scope(scope) for scope in args.scope], collections=args.collection or None
            )
            print(f"created key {issued.record.id} ({issued.record.prefix}) scopes={','.join(issued.record.scopes)}")
            print(f"secret (shown once): {issued.token}")
        elif args.keys_command == "list":
            for record in await keys.list():
                state = "revoked" if record.revoked_at else "active"
                where = ",".join(record.collections) if record.collections else "*"
                print(
                    f"{record.id}  {record.prefix}  {state:7}  scopes={','.join(record.scopes)}  "
                    f"collections={where}  name={record.name!r}  last_used={record.last_used_at}"
                )
        elif args.keys_command == "revoke":
            record = await keys.revoke(args.key_id)
            print(f"revoked key {record.id} ({record.prefix})")
        else:
            issued = await keys.rotate(args.key_id)
            print(f"key {args.key_id} revoked; new key {issued.record.id} ({issued.record.prefix})")
            print(f"secret (shown once): {issued.token}")
    return 0


async def _purge(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.gallery import GalleryService

    async with _database(settings) as database:
        report = await GalleryService(database=database).purge_expired()
    print(f"deleted {report.faces_deleted} expired faces of {report.subjects_affected} subjects")
    return 0


def _models_fetch(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.weights import download, verify, weights_source

    source = weights_source(settings)
    dest_dir: Path = args.dest or settings.model_dir
    target = dest_dir / source.filename
    if target.is_file():
        verify(target, source=source)
        print(f"{target} is already present and verified")
        return 0
    try:
        fetched = download(source, dest_dir=dest_dir)
    except OSError as error:
        # urllib's errors (refused, DNS, timeout, HTTP 404) are OSErrors: one line, not a traceback.
        raise WeightsUnavailableError(
            f"facerec models fetch: downloading {source.url} failed ({error}). Check the network, or set "
            f"FACEREC_WEIGHTS_URL to a reachable copy of the file."
        ) from None
    print(f"fetched and verified {fetched}")
    return 0


def _enrolment_jobs(root: Path) -> list[tuple[str, Path]] | None:
    """(subject, image) pairs from ROOT/<subject>/<image>; folders starting with . or _ are skipped."""
    if not root.is_dir():
        return None
    return sorted(
        (subject_dir.name, image)
        for subject_dir in root.iterdir()
        if subject_dir.is_dir() and not subject_dir.name.startswith((".", "_"))
        for image in subject_dir.iterdir()
        if image.suffix.lower() in IMAGE_SUFFIXES
    )


def _models_quantize(args: argparse.Namespace, settings: Settings) -> int:
    from app.runtime import build_face_engine, image_limits
    from app.services.onnx_cache import OnnxModelError
    from app.services.onnx_embedder import cache_path
    from app.services.quantize import calibration_crops, quantize_embedder

    if not args.directory.is_dir():
        print(f"{args.directory} is not a directory", file=sys.stderr)
        return 2
    photos = sorted(path for path in args.directory.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    # The fp32 ONNX export is what gets quantized: make sure it exists, whatever the settings say.
    engine = build_face_engine(
        settings.model_copy(update={"device": "cpu", "embedding_backend": "onnx", "embedding_precision": "fp32"})
    )
    crops, skipped = calibration_crops(engine, photos, limits=image_limits(settings), max_faces=args.max_faces)
    print(f"{len(crops)} face crops from {len(photos)} photos ({skipped} without a usable face)")
    try:
        report = quantize_embedder(
            cache_path(settings.model_dir / "onnx", settings.weights_sha256),
            weights_sha256=settings.weights_sha256,
            crops=crops,
        )
    except OnnxModelError as error:
        print(f"facerec: {error}", file=sys.stderr)
        return 1
    print(
        f"wrote {report.path}: calibrated on {report.calibration_crops} faces; on {report.checked_crops} others its "
        f"embeddings match fp32 to cosine {report.min_cosine:.4f} (min), {report.mean_cosine:.4f} (mean)"
    )
    print("use it with FACEREC_EMBEDDING_PRECISION=int8")
    return 0


async def _enroll_dir(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from app.runtime import open_runtime
    from app.services.recognition import MultipleFacesPolicy

    jobs = await asyncio.to_thread(_enrolment_jobs, args.directory)
    if jobs is None:
        print(f"{args.directory} is not a directory", file=sys.stderr)
        return 2
    rejected: list[tuple[Path, str, str]] = []
    outcomes: Counter[str] = Counter()
    async with open_runtime(settings) as runtime:
        await runtime.database.wait_ready(timeout_s=120)
        semaphore = asyncio.Semaphore(args.concurrency)
        progress = tqdm(total=len(jobs), unit="img", desc="enrolling")
        started = time.perf_counter()

        async def enrol_one(subject: str, image: Path) -> None:
            async with semaphore:
                try:
                    result = await runtime.recognition.enroll(
                        data=await asyncio.to_thread(image.read_bytes),
                        subject=subject,
                        collection=args.collection,
                        metadata=None,
                        on_multiple_faces=MultipleFacesPolicy(args.on_multiple_faces),
                    )
                    outcomes["enrolled" if result.face_created else "already enrolled"] += 1
                except FacerecError as error:
                    rejected.append((image, error.code, error.message))
                    outcomes["rejected"] += 1
                progress.update(1)

        await asyncio.gather(*(enrol_one(subject, image) for subject, image in jobs))
        seconds = time.perf_counter() - started
        progress.close()
    if jobs:
        counts = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        print(f"{counts} in {seconds:.2f} s ({len(jobs) / seconds:.1f} images/s)")
    else:
        print("no images found")
    for image, code, message in sorted(rejected):
        print(f"  rejected {image}: {code} - {message}")
    return 0


async def _identify(args: argparse.Namespace, settings: Settings) -> int:
    from app.runtime import open_runtime

    async with open_runtime(settings) as runtime:
        await runtime.database.wait_ready(timeout_s=120)
        result = await runtime.recognition.identify(
            data=await asyncio.to_thread(args.image.read_bytes),
            collection=args.collection,
            top_k=args.top_k,
            threshold=None,
            max_faces=settings.default_max_faces,
        )
    for index, item in enumerate(result.faces):
        name = item.match.name if item.match is not None else "unknown"
        best = f"{item.candidates[0].similarity:.3f}" if item.candidates else "-"
        box = ", ".join(f"{v:.0f}" for v in item.face.box)
        print(json.dumps({"face": index, "box": f"[{box}]", "match": name, "best_similarity": best}))
    if not result.faces:
        print("no faces found")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facerec", description="Face-recognition REST microservice.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service (embedded Postgres unless FACEREC_DATABASE_URL)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])

    database = commands.add_parser("db", help="database schema migrations")
    db_commands = database.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="migrate to the latest schema").add_argument("--revision", default="head")
    db_commands.add_parser("downgrade", help="migrate down").add_argument("--revision", default="base")
    db_commands.add_parser(
        "reindex", help="rebuild the HNSW index with FACEREC_HNSW_M and FACEREC_HNSW_EF_CONSTRUCTION (searches go on)"
    )

    models = commands.add_parser("models", help="model weights")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    fetch = model_commands.add_parser("fetch", help="download and verify the VGGFace2 weights")
    fetch.add_argument("--dest", type=Path, help="directory to write to (default: FACEREC_MODEL_DIR)")
    quantize = model_commands.add_parser(
        "quantize", help="make the int8 embedder (FACEREC_EMBEDDING_PRECISION=int8) from face photos in DIR"
    )
    quantize.add_argument("directory", type=Path, help="photos of faces, searched recursively")
    quantize.add_argument("--max-faces", type=int, default=400, help="faces to use (default 400)")

    enroll_dir = commands.add_parser("enroll-dir", help="enrol DIR/<subject>/<images> in bulk")
    enroll_dir.add_argument("directory", type=Path)
    enroll_dir.add_argument("--collection", default="default")
    enroll_dir.add_argument("--on-multiple-faces", choices=["reject", "largest"], default="reject")
    enroll_dir.add_argument("--concurrency", type=int, default=4)

    keys = commands.add_parser("keys", help="API keys (stored hashed; secrets are shown once)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scope", action="append", required=True, choices=["detect", "verify", "identify", "enroll", "manage", "admin"]
    )
    create.add_argument("--collection", action="append", help="limit the key to this collection (repeatable)")
    key_commands.add_parser("list", help="list keys (never their secrets)")
    key_commands.add_parser("revoke", help="revoke a key now").add_argument("key_id", type=uuid.UUID)
    key_commands.add_parser("rotate", help="replace a key with a new secret").add_argument("key_id", type=uuid.UUID)

    commands.add_parser("purge", help="delete faces past their collection's retention period now")

    identify = commands.add_parser("identify", help="identify the faces in one image")
    identify.add_argument("image", type=Path)
    identify.add_argument("--collection", default="default")
    identify.add_argument("--top-k", type=int, default=3)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # torch's OpenMP threads spin at every barrier by default; beside uvicorn and Postgres on a
    # small machine a spinning thread waits on a descheduled one and MTCNN slows ~10x (measured
    # in benchmarks/RESULTS.md). Must be set before torch is imported, which the commands do lazily.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            return _serve(args, settings)
        if args.command == "db":
            return _db(args, settings)
        if args.command == "models":
            if args.models_command == "quantize":
                return _models_quantize(args, settings)
            return _models_fetch(args, settings)
        if args.command == "enroll-dir":
            return asyncio.run(_enroll_dir(args, settings))
        if args.command == "keys":
            return asyncio.run(_keys(args, settings))
        if args.command == "purge":
            return asyncio.run(_purge(args, settings))
        return asyncio.run(_identify(args, settings))
    except WeightsUnavailableError as error:
        print(str(error), file=sys.stderr)
        return 2
    except FacerecError as error:
        print(f"{error.code}: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
