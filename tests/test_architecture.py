"""The house rules the code is checked against (STYLE.md), beside import-linter's layer contracts
(pyproject.toml, `uv run lint-imports`): keyword-only arguments, small modules, thin routes."""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

import pytest

from app.main import create_app
from tests.conftest import REPO_ROOT, api_routes

APP_DIR = REPO_ROOT / "app"
MAX_MODULE_LINES = 300
MAX_HANDLER_LINES = 15
# Functions the frameworks call with arguments of their own choosing: FastAPI resolves routes'
# and dependencies' parameters by name, Starlette calls exception handlers with (request, error),
# typer maps a command's parameters to its options.
FRAMEWORK_CALLBACK_FILES = {"app/api/auth.py", "app/api/forms.py"}
ROUTES_DIR = "app/api/routes/"  # routes, and the dependencies that parse their queries
COMMANDS_DIR = "app/cli/"  # typer commands (decorated)
FRAMEWORK_CALLBACKS = {("app/api/errors.py", name) for name in ("_facerec_error", "_validation_error", "_http_error")}
FRAMEWORK_CALLBACKS |= {("app/api/errors.py", "_unexpected_error")}


def modules() -> list[Path]:
    return sorted(APP_DIR.rglob("*.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def is_framework_callback(path: str, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    if path in FRAMEWORK_CALLBACK_FILES or (path, function.name) in FRAMEWORK_CALLBACKS:
        return True
    return path.startswith(ROUTES_DIR) or (path.startswith(COMMANDS_DIR) and bool(function.decorator_list))


def positional_parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[str], int]:
    """The parameters that can be passed by position (self and cls aside), and how many parameters there are."""
    positional = [argument.arg for argument in function.args.posonlyargs + function.args.args]
    if positional and positional[0] in ("self", "cls"):
        positional = positional[1:]
    return positional, len(positional) + len(function.args.kwonlyargs)


def test_functions_with_two_or_more_parameters_take_all_but_the_first_by_keyword() -> None:
    offenders: list[str] = []

    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name.startswith("__"):
                continue
            positional, total = positional_parameters(node)
            if total >= 2 and len(positional) > 1 and not is_framework_callback(relative(path), node):
                offenders.append(f"{relative(path)}:{node.lineno} {node.name}({', '.join(positional)})")

    assert offenders == []


@pytest.mark.parametrize("path", modules(), ids=relative)
def test_modules_are_at_most_300_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


def test_route_handlers_are_at_most_15_lines() -> None:
    routes = [route for route in api_routes(create_app().routes) if route.include_in_schema]
    lengths = {}

    for route in routes:
        (function,) = ast.parse(textwrap.dedent(inspect.getsource(route.endpoint))).body
        assert isinstance(function, ast.AsyncFunctionDef | ast.FunctionDef)
        # From `def` to the last line: the signature counts, the decorator does not.
        lengths[f"{route.endpoint.__module__}.{route.endpoint.__name__}"] = (
            (function.end_lineno or 0) - function.lineno + 1
        )

    assert len(lengths) > 15
    assert {name: length for name, length in lengths.items() if length > MAX_HANDLER_LINES} == {}


def test_the_import_contracts_cover_every_package_of_the_app() -> None:
    packages = {path.name for path in APP_DIR.iterdir() if path.is_dir() and (path / "__init__.py").is_file()}
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()

    assert packages == {"api", "cli", "db", "engine", "schemas", "services"}
    assert '"app.api", "app.services", "app.engine | app.db"' in pyproject
