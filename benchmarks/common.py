"""What every benchmark script shares: writing its JSON report and its main()."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any


class BenchmarkError(Exception):
    """A problem the user can fix (missing photos, a bad weights file); printed without a traceback."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def parse_ints(text: str) -> list[int]:
    """argparse type: a comma-separated list of integers >= 1, e.g. 1,4,8."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError("values must be integers >= 1")
    return values


def write_report(out: Path, report: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Raise, so that finally blocks and context managers stop services and remove temporary folders.
    raise SystemExit(128 + signum)


def run_main(
    name: str,
    build_parser: Callable[[], argparse.ArgumentParser],
    run: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None,
) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return run(args)
    except BenchmarkError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
