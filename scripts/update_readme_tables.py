"""Rewrite the README's configuration and error tables from app.config.Settings and app.errors.

Run after adding a setting or an error code: `uv run python scripts/update_readme_tables.py`.
tests/test_readme.py fails when the README and the code disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Settings
from app.errors import ERROR_CATALOGUE

README = Path(__file__).resolve().parents[1] / "README.md"
PER_USER_DEFAULTS = {
    "data_dir": "per-user data dir (`~/.local/share/facerec` on Linux)",
    "model_dir": "per-user cache dir (`~/.cache/facerec/models` on Linux)",
}


def config_table() -> str:
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = PER_USER_DEFAULTS.get(name)
        if default is None:
            value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            default = "unset" if value is None else f"`{shown}`"
        rows.append(f"| `FACEREC_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)


def error_table() -> str:
    rows = ["| Code | Status | Meaning | What to do |", "|---|---|---|---|"]
    for spec in sorted(ERROR_CATALOGUE.values(), key=lambda spec: (spec.status, spec.code)):
        rows.append(f"| `{spec.code}` | {spec.status} | {spec.meaning} | {spec.remedy} |")
    return "\n".join(rows)


def replace_between(text: str, marker: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {marker} -->\n).*?(\n<!-- /{marker} -->)", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {marker} --> ... <!-- /{marker} --> block")
    return pattern.sub(lambda match: match.group(1) + body + match.group(2), text)


def main() -> None:
    text = README.read_text()
    text = replace_between(text, "config-table", config_table())
    text = replace_between(text, "error-table", error_table())
    README.write_text(text)


if __name__ == "__main__":
    main()
