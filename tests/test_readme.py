"""The README stays true: its tables match the code, its commands are the ones CI runs."""

from __future__ import annotations

import re

import pytest

from app.config import Settings
from app.errors import ERROR_CATALOGUE
from app.main import create_app
from tests.conftest import REPO_ROOT, api_routes

README = (REPO_ROOT / "README.md").read_text()


def _table_rows(first_cell_pattern: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in README.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(first_cell_pattern, cells[0])
        if line.startswith("|") and match:
            rows[match.group(1)] = cells[1:]
    return rows


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_readme_configuration_table_lists_every_setting_with_its_default(name: str) -> None:
    rows = _table_rows(r"`FACEREC_([A-Z0-9_]+)`")
    field = Settings.model_fields[name]
    factory = field.default_factory
    default = factory() if factory is not None else field.default  # type: ignore[call-arg]

    assert name.upper() in rows
    if name in ("data_dir", "model_dir"):
        assert "per-user" in rows[name.upper()][0]
    elif default is None:
        assert rows[name.upper()][0] == "unset"
    else:
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        assert rows[name.upper()][0] == f"`{shown}`"


def test_readme_configuration_table_lists_nothing_that_does_not_exist() -> None:
    rows = _table_rows(r"`FACEREC_([A-Z0-9_]+)`")

    assert set(rows) == {name.upper() for name in Settings.model_fields}


def test_readme_error_table_matches_the_catalogue() -> None:
    rows = _table_rows(r"`([A-Z_]+)`")
    table = {code: int(cells[0]) for code, cells in rows.items() if cells and cells[0].isdigit()}

    assert table == {code: spec.status for code, spec in ERROR_CATALOGUE.items()}


def test_readme_has_a_curl_example_for_every_route() -> None:
    paths = {route.path for route in api_routes(create_app().routes) if route.include_in_schema}

    assert len(paths) > 10
    for path in paths:
        example = re.sub(r"\{[a-z_]+\}", r"[^ ]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}"))
        assert re.search(r"\$API" + example + r"\b", README), path


def test_readme_opens_with_the_serve_and_test_commands_that_ci_runs() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    ci_script = (REPO_ROOT / ".ci" / "run").read_text()

    assert "uv run facerec serve" in first_block
    assert "uv run pytest" in first_block
    assert "\nuv run pytest\n" in ci_script
