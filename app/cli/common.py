"""What every command shares: settings, logging, exit codes, and errors as one line each."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer

from app.config import Settings
from app.errors import (
    AuditUnavailableError,
    DatabaseUnavailableError,
    DeadlineExceededError,
    FacerecError,
    OverloadedError,
    WeightsUnavailableError,
)

# Exit codes, the same for every command.
OK = 0
SOME_REJECTED = 1  # the command ran, but some items (or the one asked for) were refused
USAGE = 2  # bad arguments or configuration (missing weights included)
UNAVAILABLE = 3  # the service or its database could not be reached

UNAVAILABLE_ERRORS = (DatabaseUnavailableError, AuditUnavailableError, OverloadedError, DeadlineExceededError)

P = ParamSpec("P")
T = TypeVar("T")


def settings() -> Settings:
    return Settings()


def configure_logging(settings: Settings) -> None:
    # torch's OpenMP threads spin at every barrier by default; beside uvicorn and Postgres on a
    # small machine a spinning thread waits on a descheduled one and MTCNN slows ~10x (measured
    # in benchmarks/RESULTS.md). Must be set before torch is imported, which only exports do.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def fail(message: str, *, code: int) -> typer.Exit:
    """Print one line to stderr; the typer.Exit to raise."""
    print(message, file=sys.stderr)
    return typer.Exit(code)


def command(function: Callable[P, int]) -> Callable[P, int]:
    """A command whose domain errors become one line on stderr and the house exit code."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        configure_logging(settings())
        try:
            return function(*args, **kwargs)
        except WeightsUnavailableError as error:
            raise fail(str(error), code=USAGE) from None
        except UNAVAILABLE_ERRORS as error:
            raise fail(f"{error.code}: {error.message}", code=UNAVAILABLE) from None
        except FacerecError as error:
            raise fail(f"{error.code}: {error.message}", code=SOME_REJECTED) from None

    return wrapper


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)
