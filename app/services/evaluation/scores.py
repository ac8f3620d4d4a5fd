"""Similarity score arrays from labelled embeddings, ready for metrics.py.

Embeddings are float32 [n, 512] and L2-normalised, so cosine similarity is a dot product. Dot products are
taken in float64 so that the scores do not carry float32 rounding into thresholds picked at one-in-a-million
rates. Everything is computed a block of rows at a time: n = 20,000 images make 200M pairs, and neither an
n x n matrix nor every pair's indices is ever held at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.services.evaluation.metrics import FloatArray, OpenSetScores

IndexArray = npt.NDArray[np.int64]

NORM_TOLERANCE = 1e-3
"""How far from 1 an embedding's L2 norm may be: further means the caller forgot to normalise."""

_BLOCK_ENTRIES = 2_000_000  # similarities per block: ~16 MB of float64, plus its pair indices
_PAIR_CHUNK = 4_096  # pairs per gathered dot-product chunk: two 16 MB row gathers, ~4x faster than 64 MB ones
_SAMPLE_BATCH_MAX = 4_000_000  # linear indices drawn per rejection-sampling round


@dataclass(frozen=True)
class VerificationScores:
    """Genuine (same-subject) and impostor (different-subject) pair scores, with the row pairs (i < j) behind
    them, in row-major pair order."""

    genuine: FloatArray
    genuine_pairs: IndexArray
    impostor: FloatArray
    impostor_pairs: IndexArray
    impostor_total: int
    impostor_sampled: bool


@dataclass(frozen=True)
class IdentificationScores:
    """The open-set search of every probe against a gallery of one image per subject.

    gallery_rows: the row enrolled for each subject with >= 2 rows. mated_rows: each mated probe's row, in the
    order of open_set's mated arrays. nonmated_rows: each single-image subject's row, in the order of the
    first len(nonmated_rows) non-mated scores; the n_distractors extra embeddings' scores follow them.
    """

    open_set: OpenSetScores
    gallery_rows: IndexArray
    mated_rows: IndexArray
    nonmated_rows: IndexArray
    n_distractors: int

    @property
    def gallery_size(self) -> int:
        return len(self.gallery_rows)

    @property
    def n_mated(self) -> int:
        return len(self.mated_rows)

    @property
    def n_nonmated(self) -> int:
        return len(self.nonmated_rows) + self.n_distractors


def _as_vectors(embeddings: npt.ArrayLike, *, name: str) -> FloatArray:
    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of one embedding per row, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all(np.abs(norms - 1.0) <= NORM_TOLERANCE):
        raise ValueError(f"{name} must be L2-normalised (every row's norm within {NORM_TOLERANCE} of 1)")
    return vectors


def _label_codes(labels: Sequence[str], *, n_rows: int) -> IndexArray:
    if len(labels) != n_rows:
        raise ValueError(f"got {len(labels)} labels for {n_rows} embeddings")
    _, codes = np.unique(np.asarray(list(labels), dtype=str), return_inverse=True)
    return codes.astype(np.int64).reshape(-1)


def _triangle_blocks(n: int) -> Iterator[tuple[int, int, IndexArray, IndexArray]]:
    """(start, stop, i, j) for every pair i < j of n rows, with i in [start, stop), row-major."""
    rows_per_block = max(1, _BLOCK_ENTRIES // max(n, 1))
    for start in range(0, n - 1, rows_per_block):
        stop = min(start + rows_per_block, n - 1)
        local_i, local_j = np.triu_indices(stop - start, k=1, m=n - start)
        yield start, stop, local_i.astype(np.int64) + start, local_j.astype(np.int64) + start


def _triangle_scores(*, vectors: FloatArray, codes: IndexArray | None = None) -> tuple[IndexArray, FloatArray]:
    """Every pair i < j of the rows, row-major, and its dot product; with codes, only pairs whose codes differ."""
    parts_pairs, parts_scores = [np.empty((0, 2), np.int64)], [np.empty(0, np.float64)]
    for start, stop, i, j in _triangle_blocks(len(vectors)):
        if codes is not None:
            different = codes[i] != codes[j]
            i, j = i[different], j[different]
        block = vectors[start:stop] @ vectors[start:].T
        parts_pairs.append(np.column_stack([i, j]))
        parts_scores.append(block[i - start, j - start])
    return np.concatenate(parts_pairs), np.concatenate(parts_scores)


def _pair_scores(*, vectors: FloatArray, pairs: IndexArray) -> FloatArray:
    scores = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(pairs), _PAIR_CHUNK):
        chunk = pairs[start : start + _PAIR_CHUNK]
        scores[start : start + len(chunk)] = np.einsum("ij,ij->i", vectors[chunk[:, 0]], vectors[chunk[:, 1]])
    return scores


def _genuine(*, vectors: FloatArray, codes: IndexArray) -> tuple[IndexArray, FloatArray]:
    by_label = np.argsort(codes, kind="stable")  # rows ascending within each label
    bounds = np.flatnonzero(np.diff(codes[by_label])) + 1
    pair_parts, score_parts = [np.empty((0, 2), np.int64)], [np.empty(0, np.float64)]
    for rows in np.split(by_label, bounds):
        if len(rows) < 2:
            continue
        group_pairs, group_scores = _triangle_scores(vectors=vectors[rows])
        pair_parts.append(rows[group_pairs])
        score_parts.append(group_scores)
    pairs, scores = np.concatenate(pair_parts), np.concatenate(score_parts)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order], scores[order]


def _unrank(linear: IndexArray, *, row_starts: IndexArray) -> IndexArray:
    """Map linear indices over the row-major i < j triangle back to (i, j)."""
    i = np.searchsorted(row_starts, linear, side="right") - 1
    return np.column_stack([i, linear - row_starts[i] + i + 1]).astype(np.int64)


def _sample_impostor_pairs(*, codes: IndexArray, impostor_total: int, count: int, seed: int) -> IndexArray:
    """A uniform sample, without replacement, of count different-label pairs; deterministic for a seed.

    Linear indices over the i < j triangle are drawn uniformly (with replacement), mapped to (i, j), and
    same-label pairs and repeats are dropped, keeping draws in draw order: each new distinct pair kept is then
    uniform over the pairs not yet kept, so the first count kept are a uniform sample without replacement.
    When count is over half of all impostor pairs, repeats would make that slow (coupon collecting), so every
    impostor pair's linear index is listed instead (at most 2 x count of them) and count are chosen from that
    list with Generator.choice(replace=False).
    """
    n = len(codes)
    rows = np.arange(n, dtype=np.int64)
    row_starts = rows * n - rows * (rows + 1) // 2  # linear index of pair (i, i + 1)
    total = n * (n - 1) // 2
    rng = np.random.default_rng(seed)
    if 2 * count > impostor_total:
        every = [np.empty(0, np.int64)]
        for _, _, i, j in _triangle_blocks(n):
            different = codes[i] != codes[j]
            every.append(row_starts[i[different]] + (j[different] - i[different] - 1))
        chosen = rng.choice(np.concatenate(every), size=count, replace=False)
    else:
        chosen = np.empty(0, np.int64)
        while len(chosen) < count:
            missing = count - len(chosen)
            batch = min(_SAMPLE_BATCH_MAX, int(missing * total / impostor_total * 1.25) + 1_000)
            drawn = rng.integers(0, total, size=batch, dtype=np.int64)
            pairs = _unrank(drawn, row_starts=row_starts)
            merged = np.concatenate([chosen, drawn[codes[pairs[:, 0]] != codes[pairs[:, 1]]]])
            _, first_seen = np.unique(merged, return_index=True)
            chosen = merged[np.sort(first_seen)][:count]
    return _unrank(np.sort(chosen), row_starts=row_starts)


def verification_scores(
    *, embeddings: npt.ArrayLike, labels: Sequence[str], max_impostor_pairs: int = 2_000_000, seed: int = 0
) -> VerificationScores:
    """Every genuine pair's score, and every impostor pair's, or a seeded sample of max_impostor_pairs of them
    when there are more (see _sample_impostor_pairs)."""
    if max_impostor_pairs < 0:
        raise ValueError("max_impostor_pairs must be >= 0")
    vectors = _as_vectors(embeddings, name="embeddings")
    codes = _label_codes(labels, n_rows=len(vectors))
    genuine_pairs, genuine = _genuine(vectors=vectors, codes=codes)
    impostor_total = len(codes) * (len(codes) - 1) // 2 - len(genuine)
    sampled = impostor_total > max_impostor_pairs
    if sampled:
        impostor_pairs = _sample_impostor_pairs(
            codes=codes, impostor_total=impostor_total, count=max_impostor_pairs, seed=seed
        )
        impostor = _pair_scores(vectors=vectors, pairs=impostor_pairs)
    else:
        impostor_pairs, impostor = _triangle_scores(vectors=vectors, codes=codes)
    return VerificationScores(
        genuine=genuine,
        genuine_pairs=genuine_pairs,
        impostor=impostor,
        impostor_pairs=impostor_pairs,
        impostor_total=impostor_total,
        impostor_sampled=sampled,
    )


def _gallery_split(*, labels: Sequence[str], order_keys: Sequence[str]) -> tuple[IndexArray, IndexArray, IndexArray]:
    """(gallery, mated, single) rows, each ascending: a label's first row by order key (ties: the lower row)
    is its gallery entry when the label has more rows, which are its mated probes; a label's only row is single."""
    rows_of: dict[str, list[int]] = {}
    for row in sorted(range(len(labels)), key=lambda row: (order_keys[row], row)):
        rows_of.setdefault(labels[row], []).append(row)
    gallery = [rows[0] for rows in rows_of.values() if len(rows) > 1]
    mated = [row for rows in rows_of.values() if len(rows) > 1 for row in rows[1:]]
    single = [rows[0] for rows in rows_of.values() if len(rows) == 1]
    return _index_array(gallery), _index_array(mated), _index_array(single)


def _index_array(rows: list[int]) -> IndexArray:
    return np.array(sorted(rows), dtype=np.int64).reshape(-1)


def _probe_blocks(*, probes: FloatArray, gallery: FloatArray) -> Iterator[tuple[slice, FloatArray]]:
    """(rows, similarities of those probes to every gallery entry), a block of probes at a time."""
    rows_per_block = max(1, _BLOCK_ENTRIES // max(len(gallery), 1))
    for start in range(0, len(probes), rows_per_block):
        rows = slice(start, min(start + rows_per_block, len(probes)))
        yield rows, probes[rows] @ gallery.T


def _mated_search(*, probes: FloatArray, gallery: FloatArray, mate_column: IndexArray) -> tuple[FloatArray, FloatArray]:
    """(mate score, best non-mate score) per probe; the latter is -inf with a gallery of one."""
    mate, best_other = np.empty(len(probes)), np.empty(len(probes))
    for rows, sims in _probe_blocks(probes=probes, gallery=gallery):
        block_rows, columns = np.arange(len(sims)), mate_column[rows]
        mate[rows] = sims[block_rows, columns]
        sims[block_rows, columns] = -np.inf
        best_other[rows] = sims.max(axis=1)
    return mate, best_other


def identification_scores(
    *,
    embeddings: npt.ArrayLike,
    labels: Sequence[str],
    order_keys: Sequence[str],
    extra_nonmated: npt.ArrayLike | None = None,
) -> IdentificationScores:
    """Search every probe against a gallery of each multi-image subject's first image (by order key).

    Mated probes are those subjects' other images; non-mated probes are the images of single-image subjects,
    then the extra_nonmated distractors. A mated probe's rank-1 entry counts as its mate only when the mate
    scores strictly above every other entry: a tie is a miss, so ties never flatter the result. With an empty
    gallery nothing can be searched: every array is empty, so rates come out nan and thresholds not measurable.
    """
    vectors = _as_vectors(embeddings, name="embeddings")
    codes = _label_codes(labels, n_rows=len(vectors))
    if len(order_keys) != len(vectors):
        raise ValueError(f"got {len(order_keys)} order keys for {len(vectors)} embeddings")
    distractors = (
        np.empty((0, vectors.shape[1]))
        if extra_nonmated is None
        else _as_vectors(extra_nonmated, name="extra_nonmated")
    )
    if distractors.shape[1] != vectors.shape[1]:
        raise ValueError(f"extra_nonmated has {distractors.shape[1]} dimensions, the embeddings {vectors.shape[1]}")
    gallery_rows, mated_rows, single_rows = _gallery_split(labels=labels, order_keys=order_keys)
    if len(gallery_rows) == 0:
        none = np.empty(0, dtype=np.int64)
        nothing = np.empty(0, dtype=np.float64)
        open_set = OpenSetScores(nothing, np.empty(0, dtype=bool), nothing, nothing)
        return IdentificationScores(
            open_set=open_set, gallery_rows=none, mated_rows=none, nonmated_rows=none, n_distractors=0
        )
    gallery = vectors[gallery_rows]
    column_of_code = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    column_of_code[codes[gallery_rows]] = np.arange(len(gallery_rows))
    mate, best_other = _mated_search(
        probes=vectors[mated_rows], gallery=gallery, mate_column=column_of_code[codes[mated_rows]]
    )
    nonmated = np.vstack([vectors[single_rows], distractors])
    nonmated_top = np.empty(len(nonmated))
    for rows, sims in _probe_blocks(probes=nonmated, gallery=gallery):
        nonmated_top[rows] = sims.max(axis=1)
    open_set = OpenSetScores(
        mated_rank1_score=np.maximum(mate, best_other),
        mated_rank1_is_mate=mate > best_other,
        mated_mate_score=mate,
        nonmated_top_score=nonmated_top,
    )
    return IdentificationScores(
        open_set=open_set,
        gallery_rows=gallery_rows,
        mated_rows=mated_rows,
        nonmated_rows=single_rows,
        n_distractors=len(distractors),
    )
