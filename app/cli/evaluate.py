"""`facerec eval` and `facerec calibrate`: how accurate the service is on your labelled photos."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from contextlib import AsyncExitStack
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from app.cli.common import OK, SOME_REJECTED, USAGE, JsonFlag, cli_options, command, fail, print_json, run, settings
from app.cli.tables import print_report
from app.config import Settings

if TYPE_CHECKING:  # the model and database libraries are imported when a command runs, not at start-up
    from app.services.evaluation.evaluate import Calibration, Evaluation, EvaluationRequest


class Precision(StrEnum):
    FP32 = "fp32"
    INT8 = "int8"
    BOTH = "both"


Directory = Annotated[Path, typer.Argument(help="DIR/<subject>/<images>, the enroll-dir layout")]
Distractors = Annotated[
    Path | None, typer.Option(help="photos of people who are none of the subjects (any layout): non-mated probes")
]


async def _evaluate_with(config: Settings, *, request: EvaluationRequest, label: str) -> Evaluation:
    from app.composition import build_analyser, open_engine, policy_of
    from app.services.evaluation.evaluate import evaluate, photos_of

    try:
        photos, distractors = photos_of(request)
    except NotADirectoryError as error:
        raise fail(f"facerec: {error}", code=USAGE) from None
    async with AsyncExitStack() as stack:
        engine = await asyncio.to_thread(open_engine, config)
        analyser = build_analyser(config, engine=engine, stack=stack)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        with progress:
            task = progress.add_task(label, total=len(photos) + len(distractors))
            return await evaluate(
                request, analyser=analyser, policy=policy_of(config), advance=lambda: progress.advance(task)
            )


def _evaluations(request: EvaluationRequest, *, precision: Precision) -> dict[str, Evaluation]:
    config = settings()
    wanted = [Precision.FP32, Precision.INT8] if precision is Precision.BOTH else [precision]
    found: dict[str, Evaluation] = {}
    for each in wanted:
        # int8 runs on ONNX Runtime on the CPU only.
        update: dict[str, Any] = {"embedding_precision": each.value}
        if each is Precision.INT8:
            update |= {"device": "cpu", "embedding_backend": "onnx"}
        found[each.value] = run(
            _evaluate_with(config.model_copy(update=update), request=request, label=f"evaluating ({each.value})")
        )
    return found


@command
def eval_command(
    directory: Directory,
    distractors: Distractors = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="write the whole report here; - prints it on stdout (tables on stderr)"),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="write the ROC and the score histograms here (PNG)")] = None,
    precision: Annotated[Precision, typer.Option(help="fp32, int8 (made by `models quantize`), or both")] = (
        Precision.FP32
    ),
    max_impostor_pairs: Annotated[int, typer.Option(min=1, help="impostor pairs sampled past this many")] = 2_000_000,
    seed: Annotated[int, typer.Option(help="seed of the impostor-pair sample")] = 0,
) -> int:
    """Measure verification (TAR@FAR, EER) and open-set identification (FNIR@FPIR) on labelled photos (local only)."""
    from app.services.evaluation.evaluate import EvaluationRequest, compare_precisions

    request = EvaluationRequest(
        directory=directory, distractors=distractors, max_impostor_pairs=max_impostor_pairs, seed=seed
    )
    evaluations = _evaluations(request, precision=precision)
    first = next(iter(evaluations.values()))
    report = dict(first.report)
    if precision is Precision.BOTH:
        report["int8"] = evaluations["int8"].report
        report["precision_comparison"] = compare_precisions(evaluations["fp32"], int8=evaluations["int8"])
    to_stdout = json_path == Path("-")
    console = Console(stderr=to_stdout)  # stdout carries the one JSON document then
    for name, evaluation in evaluations.items():
        print_report(console, report=evaluation.report, title=f"facerec eval ({name})")
    if "precision_comparison" in report:
        console.print_json(data=report["precision_comparison"])
    if to_stdout:
        print(json.dumps(report, indent=2))
    elif json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"report written to {json_path}")
    if plot is not None:
        from app.services.evaluation.plot import write_plot  # matplotlib: a second of start-up, for --plot only

        suggested, label = first.suggested
        verification = first.scored.verification
        write_plot(
            path=plot,
            roc=first.scored.roc,
            genuine=verification.genuine,
            impostor=verification.impostor,
            configured_threshold=first.report["configured_threshold"],
            suggested_threshold=suggested,
            suggested_label=label,
        )
        console.print(f"plot written to {plot}")
    return OK


@command
def calibrate_command(
    directory: Directory,
    target_far: Annotated[float, typer.Option(min=1e-9, max=0.5, help="the false accept rate to meet")] = 0.001,
    distractors: Distractors = None,
    collection: Annotated[str | None, typer.Option(help="the collection to store the threshold on")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="store it as the collection's threshold")] = False,
    as_json: JsonFlag = False,
) -> int:
    """Find the threshold that meets a target FAR on labelled photos; --apply stores it on a collection (local only)."""
    from app.services.evaluation.evaluate import EvaluationRequest, calibrate

    if apply and collection is None:
        raise fail("facerec calibrate: --apply needs --collection NAME", code=USAGE)
    request = EvaluationRequest(directory=directory, distractors=distractors)
    evaluation = _evaluations(request, precision=Precision(settings().embedding_precision))[
        settings().embedding_precision
    ]
    found = calibrate(evaluation, target_far=target_far)
    console = Console(stderr=as_json)
    applied_to = collection if apply and found.threshold is not None else None
    if applied_to is not None and found.threshold is not None:
        run(_apply(applied_to, threshold=found.threshold))
    if as_json:
        print_json(dataclasses.asdict(found) | {"measurable": found.threshold is not None, "applied_to": applied_to})
    if found.threshold is None:
        console.print(_too_few(found), style="bold red")
        return SOME_REJECTED
    console.print(
        f"threshold {found.threshold:.6f} meets FAR <= {target_far:g} on these photos (measured FAR "
        f"{found.far_achieved:.2e} over {found.impostor_pairs} impostor pairs); TAR there {found.tar:.4f}"
    )
    if applied_to is not None:
        console.print(f"collection {applied_to!r} now matches at {found.threshold:.6f}")
    return OK


def _too_few(found: Calibration) -> str:
    return (
        f"not measurable: FAR {found.target_far:g} needs at least {found.needs_impostor_pairs} impostor pairs, "
        f"and these photos make {found.impostor_pairs}. Add photos of more people (or --distractors), or aim at a "
        "higher FAR."
    )


async def _apply(collection: str, *, threshold: float) -> None:
    from app.composition import open_services
    from app.services.access import SYSTEM

    async with open_services(settings(), with_engine=False, ready_timeout_s=cli_options().db_wait_s) as services:
        await services.gallery.update_collection(
            collection, changes={"match_threshold": threshold}, principal=SYSTEM, create=True
        )
