"""Score arrays from labelled embeddings, against direct loops over the pairs and probes."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import numpy.typing as npt
import pytest

from app.services.evaluation.metrics import identification_at_threshold, rank1_hit_rate, threshold_at_fpir
from app.services.evaluation.scores import identification_scores, verification_scores

Vectors = npt.NDArray[np.float32]
DIMS = 512


def _normalised(rows: npt.ArrayLike) -> Vectors:
    vectors = np.asarray(rows, dtype=np.float32)
    normalised: Vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return normalised


def _clustered(*, seed: int, sizes: list[int], noise: float = 0.9) -> tuple[Vectors, list[str]]:
    """One embedding per image, each subject's images scattered around a centre of their own, rows shuffled."""
    rng = np.random.default_rng(seed)
    labels = [f"subject_{index}" for index, size in enumerate(sizes) for _ in range(size)]
    centres = rng.normal(size=(len(sizes), DIMS))
    codes = np.repeat(np.arange(len(sizes)), sizes)
    vectors = _normalised(
        centres[codes] / math.sqrt(DIMS) + rng.normal(size=(len(codes), DIMS)) * noise / math.sqrt(DIMS)
    )
    order = rng.permutation(len(labels))
    return vectors[order], [labels[i] for i in order]


def _padded(rows: list[list[float]]) -> Vectors:
    vectors = np.zeros((len(rows), DIMS), dtype=np.float32)
    for index, row in enumerate(rows):
        vectors[index, : len(row)] = row
    return _normalised(vectors)


def _dot(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float(np.dot(a.astype(np.float64), b.astype(np.float64)))


def test_verification_pair_counts_follow_the_label_groups() -> None:
    sizes = [1, 2, 3, 5, 1, 4]
    vectors, labels = _clustered(seed=0, sizes=sizes)
    n_same = sum(math.comb(size, 2) for size in sizes)
    n_diff = math.comb(sum(sizes), 2) - n_same

    scores = verification_scores(embeddings=vectors, labels=labels)

    assert (len(scores.genuine), len(scores.genuine_pairs)) == (n_same, n_same)
    assert (len(scores.impostor), len(scores.impostor_pairs), scores.impostor_total) == (n_diff, n_diff, n_diff)
    assert not scores.impostor_sampled


def test_verification_scores_equal_a_double_loop_over_the_pairs() -> None:
    vectors, labels = _clustered(seed=1, sizes=[3, 1, 4, 2, 6])
    genuine_by_loop: list[tuple[int, int, float]] = []
    impostor_by_loop: list[tuple[int, int, float]] = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            kind = genuine_by_loop if labels[i] == labels[j] else impostor_by_loop
            kind.append((i, j, _dot(vectors[i], vectors[j])))

    scores = verification_scores(embeddings=vectors, labels=labels)

    assert scores.genuine_pairs.tolist() == [[i, j] for i, j, _ in genuine_by_loop]
    np.testing.assert_allclose(scores.genuine, [s for _, _, s in genuine_by_loop], rtol=0, atol=1e-12)
    assert scores.impostor_pairs.tolist() == [[i, j] for i, j, _ in impostor_by_loop]
    np.testing.assert_allclose(scores.impostor, [s for _, _, s in impostor_by_loop], rtol=0, atol=1e-12)


# 200 images of 20 subjects make 19,000 impostor pairs: 3,000 of them are drawn by rejection, 15,000
# (over half) by choosing from the full list.
@pytest.mark.parametrize("sample_size", [3_000, 15_000])
def test_impostor_sample_is_exact_distinct_different_label_pairs_with_their_scores(sample_size: int) -> None:
    vectors, labels = _clustered(seed=2, sizes=[10] * 20)

    scores = verification_scores(embeddings=vectors, labels=labels, max_impostor_pairs=sample_size, seed=7)

    pairs = scores.impostor_pairs
    assert scores.impostor_sampled
    assert scores.impostor_total == 19_000
    assert len(pairs) == len(scores.impostor) == sample_size
    assert len({(i, j) for i, j in pairs.tolist()}) == sample_size
    assert np.all(pairs[:, 0] < pairs[:, 1])
    assert all(labels[i] != labels[j] for i, j in pairs.tolist())
    expected = [_dot(vectors[i], vectors[j]) for i, j in pairs.tolist()]
    np.testing.assert_allclose(scores.impostor, expected, rtol=0, atol=1e-12)
    assert len(scores.genuine) == 20 * math.comb(10, 2)


@pytest.mark.parametrize("sample_size", [3_000, 15_000])
def test_impostor_sample_is_the_same_for_a_seed_and_differs_for_another(sample_size: int) -> None:
    vectors, labels = _clustered(seed=3, sizes=[10] * 20)

    first = verification_scores(embeddings=vectors, labels=labels, max_impostor_pairs=sample_size, seed=1)
    again = verification_scores(embeddings=vectors, labels=labels, max_impostor_pairs=sample_size, seed=1)
    other = verification_scores(embeddings=vectors, labels=labels, max_impostor_pairs=sample_size, seed=2)

    np.testing.assert_array_equal(first.impostor_pairs, again.impostor_pairs)
    np.testing.assert_array_equal(first.impostor, again.impostor)
    assert not np.array_equal(first.impostor_pairs, other.impostor_pairs)


def test_impostor_sample_draws_every_impostor_pair_equally_often() -> None:
    # Six images, labels a a a b b c: 15 pairs, 4 genuine, 11 impostor; samples of 3 are drawn by rejection.
    vectors, _ = _clustered(seed=4, sizes=[6])
    labels = ["a", "a", "a", "b", "b", "c"]
    runs = 2_000

    drawn = Counter(
        (i, j)
        for seed in range(runs)
        for i, j in verification_scores(
            embeddings=vectors, labels=labels, max_impostor_pairs=3, seed=seed
        ).impostor_pairs.tolist()
    )

    expected = runs * 3 / 11  # each pair's expected count: ~545, with a standard deviation of ~20
    assert len(drawn) == 11
    assert all(abs(count - expected) < 0.15 * expected for count in drawn.values())


def test_verification_scores_reject_embeddings_that_are_not_normalised() -> None:
    vectors, labels = _clustered(seed=5, sizes=[2, 2])

    with pytest.raises(ValueError, match="L2-normalised"):
        verification_scores(embeddings=vectors * 2.0, labels=labels)


def _three_subjects() -> tuple[Vectors, list[str], list[str], Vectors]:
    """Rows a_2, b_1, c_1, a_1, b_2 (so the file order, not the row order, picks the gallery), and one
    distractor. Gallery: a_1 = e0 and b_1 = e1. a_2 is nearest a_1 (0.8 against 0); b_2 is nearer a_1 (0.6)
    than its own b_1 (0.48); c_1's best is 0.5; the distractor's is 0.9 (b_1)."""
    rows = [
        [0.8, 0.0, 0.6],  # a_2
        [0.0, 1.0, 0.0],  # b_1
        [0.5, 0.5, math.sqrt(0.5)],  # c_1
        [1.0, 0.0, 0.0],  # a_1
        [0.6, 0.48, 0.64],  # b_2
    ]
    labels = ["a", "b", "c", "a", "b"]
    keys = ["a_2.jpg", "b_1.jpg", "c_1.jpg", "a_1.jpg", "b_2.jpg"]
    return _padded(rows), labels, keys, _padded([[0.0, 0.9, 0.0, math.sqrt(0.19)]])


def test_identification_scores_on_three_known_subjects() -> None:
    vectors, labels, keys, distractor = _three_subjects()

    result = identification_scores(embeddings=vectors, labels=labels, order_keys=keys, extra_nonmated=distractor)

    scores = result.open_set
    assert result.gallery_rows.tolist() == [1, 3]
    assert result.mated_rows.tolist() == [0, 4]
    assert result.nonmated_rows.tolist() == [2]
    assert (result.gallery_size, result.n_mated, result.n_nonmated, result.n_distractors) == (2, 2, 2, 1)
    np.testing.assert_allclose(scores.mated_rank1_score, [0.8, 0.6], atol=1e-6)
    assert scores.mated_rank1_is_mate.tolist() == [True, False]
    np.testing.assert_allclose(scores.mated_mate_score, [0.8, 0.48], atol=1e-6)
    np.testing.assert_allclose(scores.nonmated_top_score, [0.5, 0.9], atol=1e-6)


@pytest.mark.parametrize(
    ("threshold", "fnir", "fpir"), [(0.4, 0.5, 1.0), (0.7, 0.5, 0.5), (0.85, 1.0, 0.5), (0.95, 1.0, 0.0)]
)
def test_identification_rates_on_three_known_subjects(threshold: float, fnir: float, fpir: float) -> None:
    vectors, labels, keys, distractor = _three_subjects()
    scores = identification_scores(embeddings=vectors, labels=labels, order_keys=keys, extra_nonmated=distractor)

    point = identification_at_threshold(scores=scores.open_set, threshold=threshold)

    assert rank1_hit_rate(scores.open_set) == 0.5
    assert (point.fnir, point.fpir) == (fnir, fpir)


def test_identification_counts_a_tie_with_another_subject_as_a_miss() -> None:
    # a_1 and b_1 are the same vector, so a_2 scores 1.0 against both.
    vectors = _padded([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])

    result = identification_scores(embeddings=vectors, labels=["a", "a", "b", "b"], order_keys=["1", "2", "1", "2"])

    assert result.open_set.mated_rank1_is_mate.tolist() == [False, False]


def test_identification_scores_are_empty_without_a_gallery() -> None:
    vectors, labels = _clustered(seed=6, sizes=[1, 1, 1])

    result = identification_scores(embeddings=vectors, labels=labels, order_keys=["x", "y", "z"])

    assert (result.gallery_size, result.n_mated, result.n_nonmated) == (0, 0, 0)
    assert len(result.open_set.nonmated_top_score) == 0
    assert math.isnan(rank1_hit_rate(result.open_set))
    assert threshold_at_fpir(scores=result.open_set, target_fpir=0.1) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identification_scores_equal_a_per_probe_loop_over_the_gallery(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = [int(size) for size in rng.integers(1, 6, size=15)]
    vectors, labels = _clustered(seed=seed, sizes=sizes, noise=4.0)
    keys = [f"{rng.integers(1000):03d}.jpg" for _ in labels]  # repeats too: ties go to the lower row
    distractors = _normalised(rng.normal(size=(10, DIMS)))
    first_row: dict[str, int] = {}
    for row in sorted(range(len(labels)), key=lambda row: (keys[row], row)):
        first_row.setdefault(labels[row], row)
    gallery = {label: row for label, row in first_row.items() if labels.count(label) > 1}
    mated = [row for row in range(len(labels)) if labels[row] in gallery and gallery[labels[row]] != row]
    expected_rank1, expected_is_mate, expected_mate = [], [], []
    for row in mated:
        mate = _dot(vectors[row], vectors[gallery[labels[row]]])
        others = [_dot(vectors[row], vectors[g]) for label, g in gallery.items() if label != labels[row]]
        expected_mate.append(mate)
        expected_rank1.append(max([mate, *others]))
        expected_is_mate.append(all(mate > other for other in others))
    nonmated = [vectors[row] for row in range(len(labels)) if labels[row] not in gallery] + list(distractors)
    expected_top = [max(_dot(probe, vectors[g]) for g in gallery.values()) for probe in nonmated]

    result = identification_scores(embeddings=vectors, labels=labels, order_keys=keys, extra_nonmated=distractors)

    scores = result.open_set
    assert result.gallery_rows.tolist() == sorted(gallery.values())
    assert result.mated_rows.tolist() == mated
    np.testing.assert_allclose(scores.mated_rank1_score, expected_rank1, rtol=0, atol=1e-12)
    assert scores.mated_rank1_is_mate.tolist() == expected_is_mate
    np.testing.assert_allclose(scores.mated_mate_score, expected_mate, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scores.nonmated_top_score, expected_top, rtol=0, atol=1e-12)
    assert 0 < sum(expected_is_mate) < len(mated)  # the data has both hits and misses, so both were checked
