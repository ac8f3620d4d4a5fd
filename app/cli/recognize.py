"""`facerec identify`, `verify` and `detect`: one photo (or two), here or through a service's API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.backend import ask
from app.cli.common import OK, JsonFlag, KeyOption, UrlOption, UsageError, command, print_json, run
from app.schemas import Box
from app.services.policy import DEFAULT_COLLECTION

Photo = Annotated[Path, typer.Argument(help="the photo", exists=True, dir_okay=False)]
Collection = Annotated[str, typer.Option(help="the collection")]


def _box(box: Box) -> str:
    return "[" + ", ".join(f"{value:.0f}" for value in (box.x1, box.y1, box.x2, box.y2)) + "]"


@command
def identify(
    image: Photo,
    collection: Collection = DEFAULT_COLLECTION,
    top_k: Annotated[int, typer.Option(min=1, max=100, help="candidates per face")] = 3,
    url: UrlOption = None,
    key: KeyOption = None,
    as_json: JsonFlag = False,
) -> int:
    """Identify the faces in one image: each face's nearest subjects, and its match or unknown."""
    data = image.read_bytes()
    answer = run(
        ask(lambda backend: backend.identify(data, collection=collection, top_k=top_k), url=url, key=key, model=True)
    )
    if as_json:
        print_json(answer.model_dump(mode="json"))
        return OK
    for index, face in enumerate(answer.faces):
        name = face.match.subject if face.match is not None else "unknown"
        best = f"{face.candidates[0].similarity:.3f}" if face.candidates else "-"
        print(json.dumps({"face": index, "box": _box(face.box), "match": name, "best_similarity": best}))
    if not answer.faces:
        print("no faces found")
    return OK


@command
def verify(
    image: Photo,
    image_b: Annotated[
        Path | None, typer.Argument(help="the second photo (or --subject)", exists=True, dir_okay=False)
    ] = None,
    subject: Annotated[str | None, typer.Option(help="an enrolled subject to compare with, instead of B")] = None,
    collection: Collection = DEFAULT_COLLECTION,
    url: UrlOption = None,
    key: KeyOption = None,
    as_json: JsonFlag = False,
) -> int:
    """Say whether photo A shows the same person as photo B, or as an enrolled subject (--subject NAME).

    Exit 0 with the answer either way (same_person true or false); 1 when a photo has no face.
    """
    if (image_b is None) == (subject is None):
        raise UsageError("facerec verify: give a second photo B or --subject NAME, not both and not neither")
    data, data_b = image.read_bytes(), None if image_b is None else image_b.read_bytes()
    answer = run(
        ask(
            lambda backend: backend.verify(data, image_b=data_b, subject=subject, collection=collection),
            url=url,
            key=key,
            model=True,
        )
    )
    if as_json:
        print_json(answer.model_dump(mode="json"))
        return OK
    verdict = "same person" if answer.same_person else "not the same person"
    print(f"{verdict}: similarity {answer.similarity:.3f}, threshold {answer.threshold:g} ({answer.threshold_source})")
    return OK


@command
def detect(image: Photo, url: UrlOption = None, key: KeyOption = None, as_json: JsonFlag = False) -> int:
    """Find every face in one image, with its box, detection probability and quality; needs no database."""
    data = image.read_bytes()
    answer = run(ask(lambda backend: backend.detect(data), url=url, key=key, model=True, database=False))
    if as_json:
        print_json(answer.model_dump(mode="json"))
        return OK
    print(f"{len(answer.faces)} faces in {answer.width}x{answer.height}")
    for index, face in enumerate(answer.faces):
        quality = face.quality
        verdict = "passes" if quality.passes else "fails " + ", ".join(failure.rule for failure in quality.failures)
        print(
            f"  face {index}: box {_box(face.box)} probability {face.detection_probability:.3f} "
            f"sharpness {quality.sharpness:.1f} roll {quality.roll_degrees:.0f} yaw {quality.yaw_offset:.2f}; "
            f"{verdict} the enrolment quality gate"
        )
    return OK
