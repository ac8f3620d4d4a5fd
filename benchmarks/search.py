"""1:N search: pgvector's HNSW index over a synthetic gallery of N face-like embeddings.

In one run, against an embedded Postgres (Postgres 18 + pgvector 0.8) in a temporary folder,
this

  1. makes a gallery of N unit 512-d vectors shaped like face embeddings: identities (several
     samples each) whose variance lies mostly in a low-dimensional subspace, plus isotropic noise;
  2. bulk loads it with binary COPY into a `faces`-like table (vector(512), PLAIN storage) and
     times the load;
  3. builds the service's HNSW index (vector_cosine_ops; m and ef_construction as given, by default
     the service's FACEREC_HNSW_M and FACEREC_HNSW_EF_CONSTRUCTION defaults) and times it;
  4. for each hnsw.ef_search, runs probes that are fresh noisy samples of enrolled identities and
     reports the top-1 hit rate (the true identity first), recall@10 against exact search
     (numpy, over the same float32 vectors) and client-side latency p50/p95/p99, both for a plain
     `ORDER BY embedding <=> q LIMIT 10` and for the service's query shape (collection and model
     filters, iterative scan, best face per subject);
  5. times a few exact searches in Postgres (sequential scan, index disabled) for scale;

then prints a table and writes JSON.

    uv run python -m benchmarks.search                 # N = 100,000
    uv run python -m benchmarks.search --million       # N = 1,000,000 (about 3 GB of RAM for Postgres)

The vectors are synthetic, so hit rates say how much the index loses against exact search on
data with a face-like geometry, not how accurate face recognition is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg import register_vector

from app.config import Settings
from app.db.embedded import EmbeddedPostgres
from app.db.hnsw import HnswOptions
from app.db.repository.faces import face_candidates
from benchmarks.common import BenchmarkError, parse_ints, positive_int, run_main, write_report
from benchmarks.identify_throughput import cpu_model, git_commit

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
DIM = 512
INDEX_NAME = "faces_embedding_idx"
MODEL_ID = "bench-synthetic"
# The service's search (app.db.repository.faces): candidates fetched per face before grouping by subject.
SERVICE_TOP_K = 3
SERVICE_FACE_LIMIT = face_candidates(SERVICE_TOP_K)
COPY_CHUNK_ROWS = 20_000

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Geometry:
    """How the synthetic embeddings are drawn (see `FaceLikeGenerator`)."""

    subspace_dim: int
    within_subspace_sd: float
    isotropic_sd: float


class FaceLikeGenerator:
    """Unit vectors with the geometry of face embeddings.

    An identity is a random unit vector in a `subspace_dim`-dimensional subspace (with a decaying
    spectrum, like the principal components of real embeddings). A sample of it adds a random
    deviation of norm `within_subspace_sd` inside the subspace and one of norm `isotropic_sd` in
    all 512 dimensions, then renormalises. With the defaults two samples of one identity have a
    cosine similarity near 0.65 and samples of different identities near 0 +- 0.1, roughly what
    FaceNet-style models give, and most of the variance lies in the subspace.
    """

    def __init__(self, geometry: Geometry, *, seed: int) -> None:
        self.geometry = geometry
        self._rng = np.random.default_rng(seed)
        basis, _ = np.linalg.qr(self._rng.standard_normal((DIM, geometry.subspace_dim)))
        spectrum = 1.0 / np.sqrt(1.0 + np.arange(geometry.subspace_dim) / (geometry.subspace_dim / 4))
        self._basis = (basis * spectrum).astype(np.float32)  # DIM x subspace, columns scaled

    def identities(self, count: int) -> Matrix:
        return _unit(self._rng.standard_normal((count, self.geometry.subspace_dim)).astype(np.float32) @ self._basis.T)

    def samples(self, centres: Matrix) -> Matrix:
        n = len(centres)
        within = _unit(self._rng.standard_normal((n, self.geometry.subspace_dim)).astype(np.float32) @ self._basis.T)
        isotropic = _unit(self._rng.standard_normal((n, DIM)).astype(np.float32))
        return _unit(centres + self.geometry.within_subspace_sd * within + self.geometry.isotropic_sd * isotropic)


def _unit(rows: Matrix) -> Matrix:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


# --- Postgres --------------------------------------------------------------------------------


@contextmanager
def embedded_postgres(work_dir: Path, *, shared_buffers: str) -> Iterator[EmbeddedPostgres]:
    """A fresh embedded Postgres in work_dir, restarted once so that shared_buffers takes effect."""
    server = EmbeddedPostgres(work_dir / "pgdata")
    server.start()
    try:
        with psycopg.connect(libpq_url(server), autocommit=True) as connection:
            connection.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
            connection.execute("ALTER SYSTEM SET jit = off")
        server.stop()
        server.start()
        yield server
    finally:
        server.stop()


def libpq_url(server: EmbeddedPostgres) -> str:
    return server.url.replace("postgresql+psycopg://", "postgresql://")


def create_table(connection: psycopg.Connection[Any]) -> None:
    connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
    connection.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    # Like the service's faces table: a filterable collection and model, the subject, the embedding.
    connection.execute(
        """
        CREATE TABLE faces (
            id bigint PRIMARY KEY,
            subject_id integer NOT NULL,
            collection_id integer NOT NULL,
            model_id text NOT NULL,
            embedding vector(512) NOT NULL
        )
        """
    )
    # PLAIN: the 2 KiB vector stays in the heap row, never TOASTed or compressed (as in the service).
    connection.execute("ALTER TABLE faces ALTER COLUMN embedding SET STORAGE PLAIN")


def copy_rows(ids: npt.NDArray[np.int64], subjects: npt.NDArray[np.int32], vectors: Matrix) -> bytes:
    """Rows in COPY BINARY format (without header and trailer); vectors in pgvector's binary layout."""
    model = MODEL_ID.encode()
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i8"),
            ("subject_len", ">i4"),
            ("subject", ">i4"),
            ("collection_len", ">i4"),
            ("collection", ">i4"),
            ("model_len", ">i4"),
            ("model", f"S{len(model)}"),
            ("vector_len", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("vector", ">f4", (DIM,)),
        ]
    )
    rows = np.empty(len(ids), dtype=row)
    rows["fields"] = 5
    rows["id_len"] = 8
    rows["id"] = ids
    rows["subject_len"] = 4
    rows["subject"] = subjects
    rows["collection_len"] = 4
    rows["collection"] = 1
    rows["model_len"] = len(model)
    rows["model"] = model
    rows["vector_len"] = 4 + 4 * DIM
    rows["dim"] = DIM
    rows["unused"] = 0
    rows["vector"] = vectors
    return rows.tobytes()


def bulk_load(
    connection: psycopg.Connection[Any], *, generator: FaceLikeGenerator, centres: Matrix, samples_per_identity: int
) -> tuple[Matrix, npt.NDArray[np.int32], float, float]:
    """Generate and COPY the gallery in chunks; the vectors, their subjects, generate time and load time."""
    n = len(centres) * samples_per_identity
    subjects = np.repeat(np.arange(len(centres), dtype=np.int32), samples_per_identity)
    vectors = np.empty((n, DIM), dtype=np.float32)
    generate_s = 0.0
    load_s = 0.0
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    with connection.cursor() as cursor:
        started = time.perf_counter()
        with cursor.copy(
            "COPY faces (id, subject_id, collection_id, model_id, embedding) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.write(header)
            for start in range(0, n, COPY_CHUNK_ROWS):
                stop = min(n, start + COPY_CHUNK_ROWS)
                generated = time.perf_counter()
                vectors[start:stop] = generator.samples(centres[subjects[start:stop]])
                payload = copy_rows(np.arange(start, stop, dtype=np.int64), subjects[start:stop], vectors[start:stop])
                generate_s += time.perf_counter() - generated
                copy.write(payload)
            copy.write((-1).to_bytes(2, "big", signed=True))
        load_s = time.perf_counter() - started - generate_s
    connection.commit()
    return vectors, subjects, generate_s, load_s


def build_index(
    connection: psycopg.Connection[Any], *, options: HnswOptions, maintenance_work_mem: str, parallel_workers: int
) -> dict[str, Any]:
    connection.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
    connection.execute(f"SET max_parallel_maintenance_workers = {parallel_workers:d}")
    notices: list[str] = []
    connection.add_notice_handler(lambda diagnostic: notices.append(str(diagnostic.message_primary)))
    started = time.perf_counter()
    connection.execute(
        f"CREATE INDEX {INDEX_NAME} ON faces USING hnsw (embedding vector_cosine_ops) WITH ({options.sql()})"
    )
    connection.commit()
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    connection.execute("VACUUM ANALYZE faces")
    analyse_s = time.perf_counter() - started
    sizes = connection.execute(
        "SELECT pg_relation_size(%s), pg_relation_size('faces'), pg_total_relation_size('faces')", (INDEX_NAME,)
    ).fetchone()
    assert sizes is not None
    return {
        "build_s": round(build_s, 2),
        "vacuum_analyze_s": round(analyse_s, 2),
        "index_bytes": int(sizes[0]),
        "heap_bytes": int(sizes[1]),
        "total_bytes": int(sizes[2]),
        "maintenance_work_mem": maintenance_work_mem,
        "max_parallel_maintenance_workers": parallel_workers,
        "notices": notices,
    }


def prewarm(connection: psycopg.Connection[Any]) -> dict[str, int]:
    """Read table and index into shared_buffers: a long-running service has them hot."""
    blocks = {}
    for relation in ("faces", INDEX_NAME):
        row = connection.execute("SELECT pg_prewarm(%s)", (relation,)).fetchone()
        blocks[relation] = int(row[0]) if row else 0
    return blocks


PLAIN_QUERY = "SELECT id FROM faces ORDER BY embedding <=> %s LIMIT %s"
# The shape of app.db.repository.faces.NEAREST_SUBJECTS: filters, face candidates, best face per subject.
SERVICE_QUERY = """
SELECT subject_id, min(distance) AS distance
FROM (
    SELECT subject_id, embedding <=> %(q)s AS distance
    FROM faces
    WHERE collection_id = 1 AND model_id = %(model)s
    ORDER BY distance
    LIMIT %(face_limit)s
) AS nearest
GROUP BY subject_id
ORDER BY distance, subject_id
LIMIT %(top_k)s
"""


def run_probes_plain(
    connection: psycopg.Connection[Any], probes: Matrix, *, ef_search: int, k: int
) -> tuple[list[list[int]], list[float]]:
    results: list[list[int]] = []
    latencies: list[float] = []
    with connection.transaction():
        connection.execute(f"SET LOCAL hnsw.ef_search = {ef_search:d}")
        for probe in probes:
            started = time.perf_counter()
            rows = connection.execute(PLAIN_QUERY, (probe, k), binary=True).fetchall()
            latencies.append(time.perf_counter() - started)
            results.append([int(row[0]) for row in rows])
    return results, latencies


def run_probes_service(
    connection: psycopg.Connection[Any], probes: Matrix, *, ef_search: int
) -> tuple[list[int | None], list[float], int]:
    """Top subject per probe and latency, with the service's settings; the ef_search actually used."""
    effective = max(ef_search, SERVICE_FACE_LIMIT)
    top: list[int | None] = []
    latencies: list[float] = []
    with connection.transaction():
        connection.execute(f"SET LOCAL hnsw.ef_search = {effective:d}")
        connection.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        for probe in probes:
            started = time.perf_counter()
            rows = connection.execute(
                SERVICE_QUERY,
                {"q": probe, "model": MODEL_ID, "face_limit": SERVICE_FACE_LIMIT, "top_k": SERVICE_TOP_K},
                binary=True,
            ).fetchall()
            latencies.append(time.perf_counter() - started)
            top.append(int(rows[0][0]) if rows else None)
    return top, latencies, effective


def uses_index(connection: psycopg.Connection[Any], probe: npt.NDArray[np.float32]) -> bool:
    plan = connection.execute("EXPLAIN (FORMAT JSON) " + PLAIN_QUERY, (probe, 10)).fetchone()
    return plan is not None and INDEX_NAME in json.dumps(plan[0])


def exact_in_postgres(connection: psycopg.Connection[Any], probes: Matrix, *, k: int) -> list[float]:
    """Latency of exact search in Postgres: the same query with index scans disabled (sequential scan)."""
    latencies: list[float] = []
    with connection.transaction():
        connection.execute("SET LOCAL enable_indexscan = off")
        connection.execute("SET LOCAL enable_bitmapscan = off")
        for probe in probes:
            started = time.perf_counter()
            connection.execute(PLAIN_QUERY, (probe, k), binary=True).fetchall()
            latencies.append(time.perf_counter() - started)
    return latencies


def exact_top_k(gallery: Matrix, probes: Matrix, *, k: int, chunk: int = 200_000) -> npt.NDArray[np.int64]:
    """Exact top-k ids by cosine similarity (the vectors are unit), in gallery chunks to bound memory."""
    best_scores = np.full((len(probes), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(probes), 0), dtype=np.int64)
    for start in range(0, len(gallery), chunk):
        scores = probes @ gallery[start : start + chunk].T
        part = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        best_ids = np.concatenate([best_ids, part + start], axis=1)
        order = np.argsort(-best_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(best_scores, order, axis=1)
        best_ids = np.take_along_axis(best_ids, order, axis=1)
    return best_ids


# --- figures ---------------------------------------------------------------------------------


def latency_ms(latencies: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(latencies, dtype=np.float64) * 1000.0
    p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
    return {
        "mean": round(float(ms.mean()), 3),
        "p50": round(p50, 3),
        "p95": round(p95, 3),
        "p99": round(p99, 3),
        "max": round(float(ms.max()), 3),
    }


def recall_at_k(found: Sequence[Sequence[int]], exact: npt.NDArray[np.int64], *, k: int) -> float:
    hits = sum(len(set(row[:k]) & {int(i) for i in truth[:k]}) for row, truth in zip(found, exact, strict=True))
    return hits / (k * len(found))


def mib(value: int) -> float:
    return round(value / (1 << 20), 1)


def print_table(report: dict[str, Any]) -> None:
    gallery, index = report["gallery"], report["index"]
    print()
    print(
        f"gallery: {gallery['faces']:,} faces of {gallery['identities']:,} identities; "
        f"COPY load {gallery['load_s']:.1f}s ({gallery['load_rows_per_s']:,.0f} rows/s); "
        f"heap {mib(index['heap_bytes'])} MiB"
    )
    print(
        f"HNSW ({index['options']}): built in {index['build_s']:.1f}s, {mib(index['index_bytes'])} MiB "
        f"(maintenance_work_mem {index['maintenance_work_mem']}, "
        f"{index['max_parallel_maintenance_workers']} parallel workers)"
    )
    exact = report["exact"]
    print(
        f"exact search (numpy): top-1 hit rate {exact['top1_hit_rate']:.4f}; in Postgres (seq scan): "
        f"p50 {exact['postgres_seqscan_latency_ms']['p50']:.1f} ms over {exact['postgres_seqscan_probes']} probes"
    )
    header = (
        f"{'ef_search':>9} {'top-1':>7} {'recall@10':>9} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}   "
        f"{'svc ef':>6} {'svc top-1':>9} {'svc p50':>7} {'svc p99':>7}"
    )
    print()
    print(header)
    print("-" * len(header))
    for row in report["by_ef_search"]:
        plain, service = row["plain"], row["service_query"]
        print(
            f"{row['ef_search']:>9} {plain['top1_hit_rate']:>7.4f} {plain['recall_at_10']:>9.4f} "
            f"{plain['latency_ms']['p50']:>7.2f} {plain['latency_ms']['p95']:>7.2f} "
            f"{plain['latency_ms']['p99']:>7.2f}   "
            f"{service['effective_ef_search']:>6} {service['top1_hit_rate']:>9.4f} "
            f"{service['latency_ms']['p50']:>7.2f} {service['latency_ms']['p99']:>7.2f}"
        )
    print()
    print(
        "plain: ORDER BY embedding <=> q LIMIT 10. svc: the service's query shape (collection/model filter, "
        f"{SERVICE_FACE_LIMIT} face candidates, iterative scan, best face per subject, top {SERVICE_TOP_K}); "
        f"it uses ef_search >= {SERVICE_FACE_LIMIT}."
    )
    print("Latency is client-side (psycopg, loopback TCP), one query at a time, after prewarming.")


# --- the run ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.search",
        description="pgvector HNSW 1:N search over a synthetic gallery of face-like embeddings.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--n", type=positive_int, default=100_000, help="gallery faces (default 100,000)")
    size.add_argument("--million", action="store_true", help="a gallery of 1,000,000 faces")
    parser.add_argument("--samples-per-identity", type=positive_int, default=5, help="faces per identity")
    parser.add_argument("--probes", type=positive_int, default=1000, help="probe queries per ef_search")
    parser.add_argument(
        "--m", type=positive_int, default=Settings.model_fields["hnsw_m"].default, help="HNSW m (FACEREC_HNSW_M)"
    )
    parser.add_argument(
        "--ef-construction",
        type=positive_int,
        default=Settings.model_fields["hnsw_ef_construction"].default,
        help="HNSW ef_construction (FACEREC_HNSW_EF_CONSTRUCTION)",
    )
    parser.add_argument("--ef-search", type=parse_ints, default=[20, 40, 80, 160], help="e.g. 20,40,80,160")
    parser.add_argument("--seqscan-probes", type=int, default=20, help="exact searches timed in Postgres")
    parser.add_argument("--subspace-dim", type=positive_int, default=96, help="dimensions holding most variance")
    parser.add_argument("--within-sd", type=float, default=0.6, help="per-sample deviation inside the subspace")
    parser.add_argument("--isotropic-sd", type=float, default=0.42, help="per-sample isotropic deviation")
    parser.add_argument(
        "--maintenance-work-mem", default=None, help="for the HNSW build (default: the graph fits, at least 2GB)"
    )
    parser.add_argument(
        "--parallel-workers", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="for the HNSW build"
    )
    parser.add_argument("--shared-buffers", default=None, help="Postgres shared_buffers (default: fits the data)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=None, help="parent of the temporary pgdata (default: TMPDIR)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default results/search_<n>.json)")
    return parser


def run_benchmark(args: argparse.Namespace) -> int:
    if shutil.disk_usage(args.work_dir or tempfile.gettempdir()).free < (12 << 30 if args.million else 2 << 30):
        raise BenchmarkError("less free disk than the gallery and its index need")
    n = 1_000_000 if args.million else args.n
    identities = max(1, n // args.samples_per_identity)
    n = identities * args.samples_per_identity
    geometry = Geometry(args.subspace_dim, args.within_sd, args.isotropic_sd)
    # ~2.7 KiB per heap row (three to a page) and ~2.7 KiB per index tuple: keep both in shared_buffers.
    shared_buffers = args.shared_buffers or f"{max(256, int(n * 6.0 / 1024) + 128)}MB"
    # pgvector builds the graph in memory (~3 KiB per 512-d element at m 16); past it, it slows a lot.
    maintenance_work_mem = args.maintenance_work_mem or f"{max(2, -(-n * 3 // (1 << 20)) + 1)}GB"
    out: Path = args.out or RESULTS_DIR / f"search_{n}.json"
    generator = FaceLikeGenerator(geometry, seed=args.seed)
    centres = generator.identities(identities)
    probe_rng = np.random.default_rng(args.seed + 1)
    probe_subjects = probe_rng.integers(0, identities, size=args.probes).astype(np.int32)
    print(
        f"gallery of {n:,} faces ({identities:,} identities x {args.samples_per_identity}); {args.probes} probes; "
        f"ef_search {args.ef_search}; shared_buffers {shared_buffers}; maintenance_work_mem {maintenance_work_mem}"
    )

    with (
        tempfile.TemporaryDirectory(prefix="facerec-search-", dir=args.work_dir, ignore_cleanup_errors=True) as temp,
        embedded_postgres(Path(temp), shared_buffers=shared_buffers) as server,
        psycopg.connect(libpq_url(server)) as connection,
    ):
        create_table(connection)
        connection.commit()
        register_vector(connection)
        gallery, subjects, generate_s, load_s = bulk_load(
            connection, generator=generator, centres=centres, samples_per_identity=args.samples_per_identity
        )
        print(f"loaded {n:,} rows with COPY BINARY in {load_s:.1f}s (+{generate_s:.1f}s generating)")
        connection.autocommit = True
        options = HnswOptions(m=args.m, ef_construction=args.ef_construction)
        index = build_index(
            connection,
            options=options,
            maintenance_work_mem=maintenance_work_mem,
            parallel_workers=args.parallel_workers,
        )
        index["options"] = options.sql()
        print(f"HNSW index built in {index['build_s']:.1f}s: {mib(index['index_bytes'])} MiB")
        for notice in index["notices"]:
            print(f"  notice: {notice}")
        prewarmed = prewarm(connection)
        connection.autocommit = False

        probes = generator.samples(centres[probe_subjects])
        started = time.perf_counter()
        exact = exact_top_k(gallery, probes, k=10)
        numpy_exact_s = time.perf_counter() - started
        exact_top1 = float(np.mean(subjects[exact[:, 0]] == probe_subjects))
        genuine = np.einsum("ij,ij->i", probes, gallery[exact[:, 0]])
        if not uses_index(connection, probes[0]):
            raise BenchmarkError("the planner does not use the HNSW index for the plain query; figures would be wrong")
        connection.rollback()

        run_probes_plain(connection, probes[: min(200, len(probes))], ef_search=max(args.ef_search), k=10)  # warm-up
        by_ef: list[dict[str, Any]] = []
        for ef_search in args.ef_search:
            found, latencies = run_probes_plain(connection, probes, ef_search=ef_search, k=10)
            top1 = np.mean(
                [bool(row) and subjects[row[0]] == truth for row, truth in zip(found, probe_subjects, strict=True)]
            )
            top_subjects, service_latencies, effective = run_probes_service(connection, probes, ef_search=ef_search)
            service_top1 = np.mean([top == truth for top, truth in zip(top_subjects, probe_subjects, strict=True)])
            row = {
                "ef_search": ef_search,
                "plain": {
                    "top1_hit_rate": round(float(top1), 4),
                    "recall_at_10": round(recall_at_k(found, exact, k=10), 4),
                    "short_results": sum(1 for ids in found if len(ids) < 10),
                    "latency_ms": latency_ms(latencies),
                },
                "service_query": {
                    "effective_ef_search": effective,
                    "top1_hit_rate": round(float(service_top1), 4),
                    "latency_ms": latency_ms(service_latencies),
                },
            }
            by_ef.append(row)
            print(
                f"ef_search {ef_search}: recall@10 {row['plain']['recall_at_10']:.4f}, "
                f"p50 {row['plain']['latency_ms']['p50']:.2f} ms"
            )
        seqscan = exact_in_postgres(connection, probes[: args.seqscan_probes], k=10) if args.seqscan_probes else []
        connection.rollback()
        versions = connection.execute(
            "SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'vector')"
        ).fetchone()
        connection.rollback()

    assert versions is not None
    report: dict[str, Any] = {
        "benchmark": "search",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "postgres": versions[0],
            "pgvector": versions[1],
            "git_commit": git_commit(),
        },
        "settings": {
            "n": n,
            "samples_per_identity": args.samples_per_identity,
            "probes": args.probes,
            "ef_search": args.ef_search,
            "geometry": asdict(geometry),
            "shared_buffers": shared_buffers,
            "seed": args.seed,
        },
        "notes": [
            "Synthetic face-like vectors (identities in a low-dimensional subspace plus isotropic noise), not real "
            "embeddings: hit rates measure what the index loses against exact search, not face recognition.",
            "Probes are fresh samples of enrolled identities. top1_hit_rate: the first result's identity is the "
            "probe's. recall_at_10: overlap of the index's 10 nearest with the exact 10 nearest (numpy).",
            "Latency: client-side wall time per query over loopback TCP (psycopg, binary parameters), one query at "
            "a time, table and index prewarmed into shared_buffers.",
        ],
        "gallery": {
            "faces": n,
            "identities": identities,
            "generate_s": round(generate_s, 2),
            "load_s": round(load_s, 2),
            "load_rows_per_s": round(n / load_s, 1) if load_s > 0 else None,
            "load_method": "COPY ... FROM STDIN WITH (FORMAT BINARY), one transaction, before the index",
            "genuine_similarity_of_nearest": {
                "mean": round(float(genuine.mean()), 4),
                "p5": round(float(np.percentile(genuine, 5)), 4),
            },
        },
        "index": {**index, "prewarmed_blocks": prewarmed},
        "exact": {
            "top1_hit_rate": round(exact_top1, 4),
            "numpy_s_for_all_probes": round(numpy_exact_s, 3),
            "postgres_seqscan_probes": len(seqscan),
            "postgres_seqscan_latency_ms": latency_ms(seqscan) if seqscan else None,
        },
        "by_ef_search": by_ef,
    }
    print_table(report)
    write_report(out, report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("search", build_parser, run_benchmark, argv)


if __name__ == "__main__":
    raise SystemExit(main())
