"""An evaluation report as tables in the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _threshold(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


def print_report(console: Console, *, report: dict[str, Any], title: str) -> None:
    enrolment, verification, identification = report["enrolment"], report["verification"], report["identification"]
    console.rule(title)
    pipeline = report["pipeline"]
    console.print(
        f"model {pipeline['model_id']}: detector {pipeline['detector']}, embedder {pipeline['embedder']}; "
        f"configured threshold {report['configured_threshold']:g}"
    )
    failures = ", ".join(f"{code} {count}" for code, count in enrolment["failures"].items()) or "none"
    console.print(
        f"{enrolment['processed']} images of {enrolment['subjects']} subjects, {enrolment['usable']} usable; "
        f"refused: {failures}"
    )

    pairs = Table(title="Verification (1:1)", title_justify="left")
    for column in ("target FAR", "threshold", "TAR", "FAR measured"):
        pairs.add_column(column, justify="right")
    for point in verification["tar_at_far"]:
        if point["measurable"]:
            pairs.add_row(
                f"{point['far']:g}", _threshold(point["threshold"]), _rate(point["tar"]), _rate(point["far_achieved"])
            )
        else:
            pairs.add_row(f"{point['far']:g}", "not measurable", f"needs {point['needs_impostor_pairs']} pairs", "-")
    console.print(pairs)
    sampled = " (a seeded sample)" if verification["impostor_sampled"] else ""
    configured = verification["at_configured_threshold"]
    best = verification["best_accuracy"]
    console.print(
        f"{verification['genuine_pairs']} genuine pairs, {verification['impostor_pairs']} impostor pairs{sampled}; "
        f"EER {_rate(verification['eer'])} at {_threshold(verification['eer_threshold'])}; best accuracy "
        f"{_rate(best['accuracy'])} at {_threshold(best['threshold'])}; "
        f"at {configured['threshold']:g}: FAR {_rate(configured['far'])}, FRR {_rate(configured['frr'])}"
    )

    search = Table(title="Identification (1:N, open set)", title_justify="left")
    for column in ("target FPIR", "threshold", "FNIR", "FPIR measured"):
        search.add_column(column, justify="right")
    for point in identification["fnir_at_fpir"]:
        if point["measurable"]:
            search.add_row(
                f"{point['fpir']:g}",
                _threshold(point["threshold"]),
                _rate(point["fnir"]),
                _rate(point["fpir_achieved"]),
            )
        else:
            search.add_row(
                f"{point['fpir']:g}", "not measurable", f"needs {point['needs_nonmated_probes']} probes", "-"
            )
    console.print(search)
    configured = identification["at_configured_threshold"]
    console.print(
        f"gallery {identification['gallery_size']}, {identification['mated_probes']} mated and "
        f"{identification['nonmated_probes']} non-mated probes ({identification['distractors']} distractors); "
        f"rank-1 hit rate {_rate(identification['rank1_hit_rate'])}; at {configured['threshold']:g}: "
        f"FNIR {_rate(configured['fnir'])}, FPIR {_rate(configured['fpir'])}"
    )
    runtime = report["runtime"]
    console.print(f"{runtime['seconds']} s in all, {runtime['seconds_per_100_images']} s per 100 images")
