"""`facerec eval` and `facerec calibrate` end to end, as subprocesses, on ../shared/faces with the real
pipeline. The weights are untrained, so only what does not depend on their similarities is checked:
the counts, the files written, the threshold stored."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from PIL import Image

from app.db.embedded import EmbeddedPostgres
from app.engine.engine import FaceEngine
from tests.test_cli import cli_env, run_cli


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    weights_file: tuple[Path, str],
    postgres: EmbeddedPostgres,
    engine: FaceEngine,
) -> dict[str, str]:
    """The CLI's environment, with a copy of the session's ONNX exports (the engine fixture made them)."""
    tmp = tmp_path_factory.mktemp("cli-eval")
    model_dir = tmp / "models"
    shutil.copytree(weights_file[0].parent / "models" / "onnx", model_dir / "onnx")  # the session's exports
    environment = cli_env(
        tmp,
        database_url=postgres.url,
        weights_path=str(weights_file[0]),
        weights_sha256=weights_file[1],
        allow_download="false",
        log_level="warning",
    )
    environment["FACEREC_MODEL_DIR"] = str(model_dir)
    return environment


@pytest.fixture(scope="module")
def evaluated(env: dict[str, str], faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, Path]:
    out = tmp_path_factory.mktemp("eval-out")
    result = run_cli(
        "eval", str(faces_dir), "--json", str(out / "report.json"), "--plot", str(out / "roc.png"), env=env
    )
    return result, out / "report.json", out / "roc.png"


def test_eval_prints_its_tables_and_writes_the_json_and_the_plot(evaluated: tuple[Any, Path, Path]) -> None:
    result, report_path, plot_path = evaluated

    assert result.returncode == 0, result.stderr
    assert "Verification (1:1)" in result.stdout
    assert "Identification (1:N, open set)" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["schema"] == "facerec-eval/1"
    with Image.open(plot_path) as plot:
        assert plot.format == "PNG"
        assert plot.width > 800


def test_eval_pair_counts_are_what_the_manifest_implies_after_the_reported_failures(
    evaluated: tuple[Any, Path, Path], faces_dir: Path
) -> None:
    report = json.loads(evaluated[1].read_text())
    failed = {item["image"] for item in report["enrolment"]["failed_images"]}
    with (faces_dir / "manifest.csv").open(newline="") as stream:
        usable = [
            row["identity"]
            for row in csv.DictReader(stream)
            if row["identity"] and not row["path"].startswith("_") and row["path"] not in failed
        ]
    sizes = Counter(usable).values()
    genuine = sum(n * (n - 1) // 2 for n in sizes)

    assert report["enrolment"]["processed"] == 200
    assert report["enrolment"]["usable"] == len(usable)
    assert sum(report["enrolment"]["failures"].values()) == len(failed)
    assert report["verification"]["genuine_pairs"] == genuine
    assert report["verification"]["impostor_pairs"] == len(usable) * (len(usable) - 1) // 2 - genuine
    assert report["identification"]["gallery_size"] == sum(1 for n in sizes if n >= 2)
    assert report["identification"]["mated_probes"] == sum(n - 1 for n in sizes if n >= 2)
    assert report["identification"]["nonmated_probes"] == sum(1 for n in sizes if n == 1)


def test_calibrate_apply_stores_the_threshold_on_the_collection(
    env: dict[str, str], faces_dir: Path, postgres: EmbeddedPostgres
) -> None:
    result = run_cli(
        "calibrate", str(faces_dir), "--target-far", "0.01", "--collection", "calibrated", "--apply", env=env
    )

    assert result.returncode == 0, result.stderr
    printed = float(result.stdout.split("threshold ", 1)[1].split()[0])
    with psycopg.connect(postgres.url.replace("+psycopg", "")) as connection:
        row = connection.execute("SELECT match_threshold FROM collections WHERE name = 'calibrated'").fetchone()
    assert row is not None
    assert row[0] >= printed
    assert row[0] == pytest.approx(printed, abs=1e-6)
    assert "collection 'calibrated' now matches at" in result.stdout


def test_calibrate_says_when_there_are_too_few_impostor_pairs_for_the_target(
    env: dict[str, str], faces_dir: Path
) -> None:
    result = run_cli("calibrate", str(faces_dir), "--target-far", "0.00001", env=env)

    assert result.returncode == 1
    assert "not measurable" in result.stdout
    assert "1000000 impostor pairs" in result.stdout


def test_eval_of_a_folder_that_does_not_exist_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli("eval", str(tmp_path / "absent"), env=env)

    assert result.returncode == 2
    assert "is not a directory" in result.stderr


def test_eval_with_both_precisions_compares_fp32_and_int8_face_by_face(
    env: dict[str, str], faces_dir: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    for subject in ("lfw_al_gore", "lfw_bill_frist", "lfw_al_sharpton"):
        shutil.copytree(faces_dir / subject, photos / subject)
    quantized = run_cli("models", "quantize", str(faces_dir), "--max-faces", "40", env=env)
    assert quantized.returncode == 0, quantized.stderr

    result = run_cli("eval", str(photos), "--precision", "both", "--json", str(tmp_path / "both.json"), env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "both.json").read_text())
    comparison = report["precision_comparison"]
    assert report["pipeline"]["embedder"] == "onnx fp32"
    assert report["int8"]["pipeline"]["embedder"] == "onnx int8"
    assert comparison["faces_compared"] == report["enrolment"]["usable"] > 10
    assert comparison["cosine_fp32_int8"]["min"] >= 0.99
    assert [point["far"] for point in comparison["tar_at_far"]] == [0.01, 0.001, 0.0001]
