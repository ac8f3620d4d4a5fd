"""`facerec eval` and `calibrate` as use cases, with the controlled embedder (tests/embedder.py), whose
similarity distributions are known: the figures must come out as an independent computation says."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from app.composition import build_analyser, open_engine, policy_of
from app.config import Settings
from app.services.evaluation.evaluate import Evaluation, EvaluationRequest, calibrate, evaluate
from tests.embedder import LabelledEmbedder, photo_embedding

# People who are none of the subjects evaluated (the distractors); the subjects are the LFW folders
# of six photos each (over 10,000 impostor pairs, enough to measure a FAR of 1e-2) and two people
# with one photo each.
DISTRACTORS = ["paul_rudd/1.jpg", "steve_carell/1.jpg", "shea_whigham/1.jpg"]
SINGLES = ["amy_adams", "kate_siegel"]


@pytest.fixture(scope="module")
def folders(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    labelled, distractors = root / "labelled", root / "distractors"
    subjects = [folder.name for folder in faces_dir.glob("lfw_*") if len(list(folder.iterdir())) == 6]
    for subject in [*subjects, *SINGLES]:
        (labelled / subject).mkdir(parents=True)
        for photo in sorted((faces_dir / subject).iterdir()):
            (labelled / subject / photo.name).symlink_to(photo)
    distractors.mkdir()
    for relative in DISTRACTORS:
        (distractors / relative.replace("/", "-")).symlink_to(faces_dir / relative)
    return labelled, distractors


@pytest.fixture(scope="module")
def evaluation(settings: Settings, labelled_embedder: LabelledEmbedder, folders: tuple[Path, Path]) -> Evaluation:
    labelled, distractors = folders

    async def run() -> Evaluation:
        async with AsyncExitStack() as stack:
            engine = await asyncio.to_thread(open_engine, settings, embedder=labelled_embedder)
            analyser = build_analyser(settings, engine=engine, stack=stack)
            request = EvaluationRequest(directory=labelled, distractors=distractors)
            return await evaluate(request, analyser=analyser, policy=policy_of(settings))

    return asyncio.run(run())


def usable_by_subject(evaluation: Evaluation) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for item in evaluation.embedded:
        if item.embedding is not None and item.photo.subject:
            found.setdefault(item.photo.subject, []).append(item.photo.name)
    return found


def test_pair_counts_are_every_genuine_and_impostor_pair_of_the_usable_photos(evaluation: Evaluation) -> None:
    sizes = [len(names) for names in usable_by_subject(evaluation).values()]
    usable = sum(sizes)

    verification = evaluation.report["verification"]

    assert verification["genuine_pairs"] == sum(n * (n - 1) // 2 for n in sizes)
    assert verification["impostor_pairs"] == usable * (usable - 1) // 2 - verification["genuine_pairs"]
    assert verification["impostor_sampled"] is False


def test_photos_of_one_person_match_and_strangers_do_not_at_the_default_threshold(evaluation: Evaluation) -> None:
    verification, identification = evaluation.report["verification"], evaluation.report["identification"]

    assert verification["at_configured_threshold"] == {"threshold": 0.5, "far": 0.0, "frr": 0.0}
    assert verification["genuine_pairs"] > 300
    assert identification["rank1_hit_rate"] == 1.0
    assert identification["at_configured_threshold"]["fnir"] == 0.0
    assert identification["at_configured_threshold"]["fpir"] == 0.0
    assert identification["distractors"] == len(DISTRACTORS)
    assert identification["nonmated_probes"] == len(SINGLES) + len(DISTRACTORS)


def test_calibrate_finds_the_threshold_whose_far_an_independent_computation_gives(
    evaluation: Evaluation, labelled_embedder: LabelledEmbedder
) -> None:
    names = [(subject, name) for subject, photos in usable_by_subject(evaluation).items() for name in photos]
    # The evaluation names photos <subject>/<file>, which is their path in the faces folder too.
    vectors = {name: photo_embedding(subject, photo=name, noise=labelled_embedder.noise) for subject, name in names}
    impostors = sorted(
        (float(np.dot(vectors[a], vectors[b])) for (s1, a), (s2, b) in combinations(names, 2) if s1 != s2),
        reverse=True,
    )
    allowed = int(0.01 * len(impostors))  # false accepts a FAR of 1% admits

    found = calibrate(evaluation, target_far=0.01)

    assert found.threshold is not None
    assert impostors[allowed] < found.threshold <= impostors[allowed] + 1e-5
    assert sum(score >= found.threshold for score in impostors) <= allowed
    assert found.tar == 1.0


def test_a_target_far_too_small_for_the_data_is_not_measurable(evaluation: Evaluation) -> None:
    found = calibrate(evaluation, target_far=1e-5)

    assert found.threshold is None
    assert found.needs_impostor_pairs == 1_000_000
    assert found.impostor_pairs < found.needs_impostor_pairs


def test_refusals_are_counted_by_error_code(evaluation: Evaluation) -> None:
    enrolment = evaluation.report["enrolment"]

    assert enrolment["processed"] == len(evaluation.embedded)
    assert enrolment["usable"] + sum(enrolment["failures"].values()) == enrolment["processed"]
    assert all(item["code"] in enrolment["failures"] for item in enrolment["failed_images"])
