"""The photos an evaluation runs on: DIR/<subject>/<images>, the layout `facerec enroll-dir` reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


@dataclass(frozen=True)
class Photo:
    """One photo: whose it is ("" for a distractor), where it is, and its name inside its folder tree."""

    subject: str
    path: Path
    name: str


def labelled_photos(root: Path) -> list[Photo]:
    """Every image of ROOT/<subject>/, sorted by subject and file name; folders starting with . or _ are skipped.

    Raises NotADirectoryError when ROOT is not a directory.
    """
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    return sorted(
        (
            Photo(subject=folder.name, path=image, name=f"{folder.name}/{image.name}")
            for folder in root.iterdir()
            if folder.is_dir() and not folder.name.startswith((".", "_"))
            for image in folder.iterdir()
            if image.is_file() and image.suffix.lower() in IMAGE_SUFFIXES
        ),
        key=lambda photo: (photo.subject, photo.path.name),
    )


def distractor_photos(root: Path) -> list[Photo]:
    """Every image under ROOT, at any depth: people who are none of the labelled subjects."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    return [
        Photo(subject="", path=image, name=str(image.relative_to(root)))
        for image in sorted(root.rglob("*"))
        if image.is_file() and image.suffix.lower() in IMAGE_SUFFIXES
    ]
