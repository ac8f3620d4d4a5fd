"""`facerec identify`: who is in one image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import OK, command, run, settings
from app.composition import open_services
from app.services.access import SYSTEM
from app.services.recognition import IdentifyRequest


@command
def identify(
    image: Annotated[Path, typer.Argument(help="the photo", exists=True, dir_okay=False)],
    collection: Annotated[str, typer.Option(help="collection to search")] = "default",
    top_k: Annotated[int, typer.Option(min=1, max=100, help="candidates per face")] = 3,
) -> int:
    """Identify the faces in one image."""
    config = settings()

    async def go() -> None:
        async with open_services(config, with_engine=True) as services:
            assert services.recognition is not None
            request = IdentifyRequest(
                data=image.read_bytes(), collection=collection, top_k=top_k, max_faces=config.default_max_faces
            )
            result = await services.recognition.identify(request, principal=SYSTEM)
        for index, item in enumerate(result.faces):
            name = item.match.name if item.match is not None else "unknown"
            best = f"{item.candidates[0].similarity:.3f}" if item.candidates else "-"
            box = ", ".join(f"{v:.0f}" for v in item.face.box)
            print(json.dumps({"face": index, "box": f"[{box}]", "match": name, "best_similarity": best}))
        if not result.faces:
            print("no faces found")

    run(go())
    return OK
