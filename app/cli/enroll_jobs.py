"""What `facerec enroll-dir` enrols: DIR/<folder>/<image>, under names from DIR/names.csv or the folder's."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pydantic

from app.schemas import SubjectName
from app.services.evaluation.dataset import IMAGE_SUFFIXES

NAMES_FILE = "names.csv"
_SUBJECT_NAME: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(SubjectName)


class JobsError(ValueError):
    """DIR is not a directory, or its names.csv cannot be used; the message says which and where."""


@dataclass(frozen=True)
class EnrolmentJob:
    folder: str  # DIR/<folder>
    subject: str  # the display name enrolled: names.csv's, else the folder's
    image: Path


def display_names(root: Path) -> dict[str, str]:
    """folder -> name from ROOT/names.csv (columns folder,name; a header row; UTF-8), or {} without one."""
    path = root / NAMES_FILE
    if not path.is_file():
        return {}
    names: dict[str, str] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:  # -sig: spreadsheets write a BOM
            reader = csv.DictReader(file)
            reader.fieldnames = [field.strip().lower() for field in reader.fieldnames or []]
            if not {"folder", "name"} <= set(reader.fieldnames):
                raise JobsError(f"{path}: the first row must name the columns folder,name")
            for row in reader:
                folder, name = (row.get("folder") or "").strip(), (row.get("name") or "").strip()
                where = f"{path} line {reader.line_num}"
                if not folder or not name:
                    raise JobsError(f"{where}: both folder and name are needed")
                if names.get(folder, name) != name:
                    raise JobsError(f"{where}: folder {folder!r} is named twice ({names[folder]!r}, {name!r})")
                names[folder] = _valid_name(name, where=where)
    except (UnicodeDecodeError, csv.Error) as error:
        raise JobsError(f"{path}: not a UTF-8 CSV file ({error})") from None
    return names


def _valid_name(name: str, *, where: str) -> str:
    try:
        return _SUBJECT_NAME.validate_python(name)
    except pydantic.ValidationError as error:
        raise JobsError(f"{where}: the name {name!r} {error.errors()[0]['msg'].lower()}") from None


def enrolment_jobs(root: Path) -> list[EnrolmentJob]:
    """Every image of ROOT/<folder>/, sorted; folders starting with . or _ are skipped."""
    if not root.is_dir():
        raise JobsError(f"{root} is not a directory")
    names = display_names(root)
    return sorted(
        (
            EnrolmentJob(folder=folder.name, subject=names.get(folder.name, folder.name), image=image)
            for folder in root.iterdir()
            if folder.is_dir() and not folder.name.startswith((".", "_"))
            for image in folder.iterdir()
            if image.suffix.lower() in IMAGE_SUFFIXES and image.is_file()
        ),
        key=lambda job: job.image,
    )
