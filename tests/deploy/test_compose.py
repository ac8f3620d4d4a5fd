"""docker-compose.yml (and its GPU override), checked without a Docker engine: validated against
the Compose Specification's JSON schema, before and after interpolation, and read for what the
deployment relies on."""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from sqlalchemy.engine import make_url

from app.config import Settings
from tests.conftest import REPO_ROOT
from tests.deploy import dockerfile

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
GPU_FILE = REPO_ROOT / "docker-compose.gpu.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
# The Compose Specification's schema (compose-spec/compose-spec, schema/compose-spec.json) as
# vendored by the check-jsonschema package, a dev dependency: no download at test time.
SCHEMA_PACKAGE = "check_jsonschema.builtin_schemas.vendor"
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
A_PASSWORD = "s3cret-hex-0123456789abcdef"


class MissingVariableError(Exception):
    """A ${NAME:?message} variable was unset or empty."""


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def compose_schema() -> dict[str, Any]:
    schema = json.loads(importlib.resources.files(SCHEMA_PACKAGE).joinpath("compose-spec.json").read_text())
    assert isinstance(schema, dict)
    assert schema["title"] == "Compose Specification"
    return schema


def validate(document: dict[str, Any]) -> None:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator_class(schema).validate(document)


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default},
    ${NAME:?message} and ${NAME?message}, applied to every string value."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3)
        current = env.get(name)
        unset = current is None or (current == "" and operator is not None and operator.startswith(":"))
        if operator in {":-", "-"} and unset:
            return str(argument)
        if operator in {":?", "?"} and unset:
            raise MissingVariableError(f"{name}: {argument}")
        return current or ""

    parts = value.split("$$")
    return "$".join(VARIABLE.sub(replace, part) for part in parts)


def variables(path: Path) -> dict[str, tuple[str | None, str | None]]:
    """Each variable a compose file reads, with its operator and default (or message)."""
    found: dict[str, tuple[str | None, str | None]] = {}
    for match in VARIABLE.finditer(path.read_text().replace("$$", "")):
        found[match.group(1) or match.group(4)] = (match.group(2), match.group(3))
    return found


def deployment_env(**overrides: str) -> dict[str, str]:
    env = {name: value for name, value in env_example().items() if value}
    env["POSTGRES_PASSWORD"] = A_PASSWORD
    env.update(overrides)
    return env


COMPOSE = load(COMPOSE_FILE)
DB = COMPOSE["services"]["db"]
APP = COMPOSE["services"]["app"]


# --- the schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE_FILE, GPU_FILE], ids=lambda path: path.name)
def test_compose_file_is_valid_against_the_compose_specification(path: Path) -> None:
    document = load(path)

    validate(document)
    validate(interpolate(document, deployment_env()))


def test_the_gpu_override_merged_over_the_compose_file_is_valid() -> None:
    merged = load(COMPOSE_FILE)
    gpu_app = load(GPU_FILE)["services"]["app"]
    app = merged["services"]["app"]

    app["build"]["args"].update(gpu_app["build"]["args"])
    app["environment"].update(gpu_app["environment"])
    app["image"], app["deploy"] = gpu_app["image"], gpu_app["deploy"]

    validate(interpolate(merged, deployment_env()))
    assert app["build"]["args"]["TORCH_VARIANT"] == "cuda"
    assert app["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_schema_rejects_a_compose_file_with_a_misspelt_key() -> None:
    broken = load(COMPOSE_FILE)
    broken["services"]["app"]["depends_on"]["db"]["condtion"] = "service_healthy"

    with pytest.raises(jsonschema.ValidationError, match="condtion"):
        validate(broken)


# --- db -----------------------------------------------------------------------------------------


def test_db_runs_a_current_postgres_with_pgvector_on_a_named_volume() -> None:
    image = DB["image"]

    assert re.fullmatch(r"pgvector/pgvector:0\.8\.\d+-pg18(-\w+)?", image), image
    assert "pgdata:/var/lib/postgresql" in DB["volumes"]
    assert "pgdata" in COMPOSE["volumes"]
    assert DB["restart"] == "unless-stopped"


def test_db_healthcheck_is_pg_isready_for_its_own_user_and_database() -> None:
    test = DB["healthcheck"]["test"]

    assert test[0] == "CMD-SHELL"
    assert test[1].startswith("pg_isready ")
    assert '"$${POSTGRES_USER}"' in test[1]
    assert '"$${POSTGRES_DB}"' in test[1]
    assert interpolate(test[1], {}).count("${POSTGRES_") == 2  # left for the container's shell


def test_database_password_comes_from_the_environment_with_no_default() -> None:
    raw_password = DB["environment"]["POSTGRES_PASSWORD"]
    url_template = APP["environment"]["FACEREC_DATABASE_URL"]

    assert raw_password.startswith("${POSTGRES_PASSWORD:?")
    assert "${POSTGRES_PASSWORD:?" in url_template
    assert variables(COMPOSE_FILE)["POSTGRES_PASSWORD"][0] == ":?"
    assert env_example()["POSTGRES_PASSWORD"] == ""
    with pytest.raises(MissingVariableError, match="POSTGRES_PASSWORD"):
        interpolate(COMPOSE, deployment_env(POSTGRES_PASSWORD=""))


def test_db_settings_for_replicas_are_tunable_from_the_environment() -> None:
    command = interpolate(DB["command"], deployment_env(POSTGRES_MAX_CONNECTIONS="300"))

    assert command[0] == "postgres"
    assert "max_connections=300" in command
    assert any(option.startswith("shared_buffers=") for option in command)
    assert any(option.startswith("maintenance_work_mem=") for option in command)
    assert interpolate(DB["shm_size"], deployment_env()) == env_example()["POSTGRES_SHM_SIZE"]


# --- app ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{}, {"POSTGRES_USER": "alice", "POSTGRES_DB": "faces_prod", "POSTGRES_PASSWORD": "0f1e2d3c"}],
    ids=["defaults", "custom"],
)
def test_app_database_url_is_built_from_the_same_variables_as_the_db(overrides: dict[str, str]) -> None:
    env = deployment_env(**overrides)
    db = interpolate(DB["environment"], env)

    url = make_url(interpolate(APP["environment"]["FACEREC_DATABASE_URL"], env))

    assert url.drivername == "postgresql"
    assert (url.host, url.port) == ("db", 5432)
    assert url.username == db["POSTGRES_USER"]
    assert url.password == db["POSTGRES_PASSWORD"]
    assert url.database == db["POSTGRES_DB"]


def test_app_waits_for_a_healthy_db_and_checks_its_own_readiness() -> None:
    healthcheck = " ".join(APP["healthcheck"]["test"])

    assert APP["depends_on"]["db"]["condition"] == "service_healthy"
    # restart: true would make `docker compose restart db` restart every replica as well.
    assert "restart" not in APP["depends_on"]["db"]
    assert APP["healthcheck"]["test"][0] == "CMD"
    assert "/readyz" in healthcheck
    assert "127.0.0.1:8000" in healthcheck
    assert APP["restart"] == "unless-stopped"


def test_app_is_built_from_this_dockerfile_and_publishes_its_port() -> None:
    image_port = dockerfile.parse().final.env()["FACEREC_PORT"]

    ports = interpolate(APP["ports"], deployment_env())

    assert APP["build"]["context"] == "."
    assert "dockerfile" not in APP["build"]
    assert APP["build"]["args"]["TORCH_VARIANT"] == "cpu"
    assert ports == [f"{env_example()['APP_PORTS']}:{image_port}"]
    assert interpolate(APP["ports"], deployment_env(APP_PORTS="8000-8002")) == [f"8000-8002:{image_port}"]


def test_app_can_run_as_several_replicas() -> None:
    environment = interpolate(APP["environment"], deployment_env())

    assert "container_name" not in APP
    assert "hostname" not in APP
    assert environment["FACEREC_MIGRATE_ON_START"] == "true"
    assert not any(isinstance(volume, str) and not volume.startswith("/") for volume in APP.get("volumes", []))


def test_app_passes_only_real_settings_with_the_services_defaults() -> None:
    environment: dict[str, str] = APP["environment"]

    for name, template in environment.items():
        field = name.removeprefix("FACEREC_").lower()
        assert field in Settings.model_fields, name
        default = Settings.model_fields[field].default
        match = re.fullmatch(r"\$\{" + name + r":-([^}]*)\}", template)
        if match and default is not None:
            shown = str(default).lower() if isinstance(default, bool) else str(default)
            assert match.group(1) == shown, name


# --- .env.example -------------------------------------------------------------------------------


def test_env_example_names_every_variable_the_compose_files_read_with_the_same_defaults() -> None:
    documented = env_example()

    assert set(variables(GPU_FILE)) <= set(documented), set(variables(GPU_FILE)) - set(documented)
    assert set(variables(COMPOSE_FILE)) <= set(documented), set(variables(COMPOSE_FILE)) - set(documented)
    for name, (operator, default) in variables(COMPOSE_FILE).items():
        if operator == ":-":
            assert documented[name] == default, name


def test_env_example_holds_no_secret_and_no_database_url() -> None:
    documented = env_example()

    assert documented["POSTGRES_PASSWORD"] == ""
    assert "FACEREC_DATABASE_URL" not in documented
    assert set(documented) - {"POSTGRES_PASSWORD"} <= set(variables(COMPOSE_FILE) | variables(GPU_FILE))
