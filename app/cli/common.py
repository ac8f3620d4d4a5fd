"""What every command shares: settings, logging, exit codes, JSON output, and errors as one line each."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import pydantic
import typer

from app.cli.remote import Failure, RemoteError
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
USAGE = 2  # bad arguments or configuration (missing weights, a bad API key included)
UNAVAILABLE = 3  # the service or its database could not be reached

UNAVAILABLE_ERRORS = (DatabaseUnavailableError, AuditUnavailableError, OverloadedError, DeadlineExceededError)

DEFAULT_DB_WAIT_S = 30.0

# The options the commands share, declared once.
JsonFlag = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout (logs go to stderr)")]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="FACEREC_URL", help="a running service's base URL: work through its API, not the local database"
    ),
]
KeyOption = Annotated[str | None, typer.Option("--key", envvar="FACEREC_KEY", help="the API key sent with --url")]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class CliOptions:
    """The root command's options, for the commands below it."""

    db_wait_s: float = DEFAULT_DB_WAIT_S


# Set by the root command before its subcommand runs; asyncio.run and to_thread copy it along.
_options: ContextVar[CliOptions | None] = ContextVar("facerec_cli_options", default=None)


def use_options(options: CliOptions) -> None:
    _options.set(options)


def cli_options() -> CliOptions:
    return _options.get() or CliOptions()


def settings() -> Settings:
    return Settings()


def configure_logging(settings: Settings) -> None:
    # torch's OpenMP threads spin at every barrier by default; beside uvicorn and Postgres on a
    # small machine a spinning thread waits on a descheduled one and MTCNN slows ~10x (measured
    # in benchmarks/RESULTS.md). Must be set before torch is imported, which only exports do.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,  # stdout is for results, which scripts read
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def print_json(document: object) -> None:
    """The command's one JSON document, on stdout."""
    print(json.dumps(document, ensure_ascii=False, indent=2))


def fail(message: str, *, code: int) -> typer.Exit:
    """Print one line to stderr; the typer.Exit to raise."""
    print(message, file=sys.stderr)
    return typer.Exit(code)


class UsageError(Exception):
    """A bad argument found after parsing (a missing folder, a bad names.csv): exit 2, one line on stderr."""

    code = "USAGE_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def exit_code_of(error: FacerecError | RemoteError) -> int:
    """The house exit code of an error the service (here or over HTTP) answered."""
    if isinstance(error, RemoteError):
        return {Failure.USAGE: USAGE, Failure.UNAVAILABLE: UNAVAILABLE, Failure.REFUSED: SOME_REJECTED}[error.failure]
    return UNAVAILABLE if isinstance(error, UNAVAILABLE_ERRORS) else SOME_REJECTED


def error_document(*, code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API's error shape, for --json."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _failed(*, code: str, message: str, details: dict[str, Any] | None, exit_code: int, as_json: bool) -> typer.Exit:
    if as_json:
        print_json(error_document(code=code, message=message, details=details))
    return fail(message if code == UsageError.code else f"{code}: {message}", code=exit_code)


def command(function: Callable[P, int]) -> Callable[P, int]:
    """A command whose errors become one line on stderr (and, with --json, the API's error document on
    stdout) and the house exit code."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        as_json = kwargs.get("as_json") is True
        try:
            configure_logging(settings())
            return function(*args, **kwargs)
        except pydantic.ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors())
            raise _failed(
                code="CONFIGURATION_ERROR", message=problems, details=None, exit_code=USAGE, as_json=as_json
            ) from None
        except UsageError as error:
            raise _failed(
                code=error.code, message=error.message, details=None, exit_code=USAGE, as_json=as_json
            ) from None
        except WeightsUnavailableError as error:
            if as_json:
                print_json(error_document(code="WEIGHTS_UNAVAILABLE", message=str(error)))
            raise fail(str(error), code=USAGE) from None
        except (FacerecError, RemoteError) as error:
            raise _failed(
                code=error.code,
                message=error.message,
                details=error.details,
                exit_code=exit_code_of(error),
                as_json=as_json,
            ) from None
        except Exception as error:
            if not unreachable_database(error):
                raise
            message = f"The database cannot be reached: {str(error).strip().splitlines()[0][:300]}"
            raise _failed(
                code=DatabaseUnavailableError.code,
                message=message,
                details=None,
                exit_code=UNAVAILABLE,
                as_json=as_json,
            ) from None

    return wrapper


def unreachable_database(error: Exception) -> bool:
    """Whether a driver says the database cannot be reached, outside a unit of work (migrations, reindex)."""
    if "sqlalchemy" not in sys.modules:  # nothing imported the drivers, so none of their errors can be this
        return False
    import psycopg
    from sqlalchemy import exc

    return isinstance(
        error, (exc.OperationalError, exc.InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
    )


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)
