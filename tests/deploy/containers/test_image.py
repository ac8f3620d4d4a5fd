"""The image the Dockerfile builds: who it runs as, what its layers record, and its HEALTHCHECK."""

from __future__ import annotations

import json
import re

from tests.deploy.containers.conftest import Report
from tests.deploy.containers.stack import TEST_LABEL, Stack

SERVICE_UID = "10001"
# What a secret looks like anywhere in the image's metadata: our key format, a password variable,
# or credentials inside a database URL.
SECRET_PATTERNS = (r"frk_[A-Za-z0-9]", r"PASSWORD", r"postgres(?:ql)?(?:\+\w+)?://[^/\s:@]+:[^/\s@]+@")


def test_image_runs_as_the_unprivileged_service_user(stack: Stack, image: str) -> None:
    config = stack.inspect(image)["Config"]

    uid = stack.docker("run", "--rm", "--label", f"{TEST_LABEL}={stack.project}", image, "id", "-u")

    assert config["User"] == f"{SERVICE_UID}:{SERVICE_UID}"
    assert uid == SERVICE_UID


def test_image_layers_and_settings_hold_no_secret(stack: Stack, image: str, admin_key: str, report: Report) -> None:
    history = stack.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).splitlines()
    details = stack.inspect(image)
    metadata = "\n".join([*history, json.dumps(details["Config"])])
    run_secrets = [stack.env_value("POSTGRES_PASSWORD"), admin_key]

    size_mib = details["Size"] / 2**20
    report.line(f"image {image}: {size_mib:.0f} MiB in {len(history)} history entries")

    assert history
    for pattern in SECRET_PATTERNS:
        assert not re.search(pattern, metadata), f"the image's metadata matches {pattern!r}"
    for secret in run_secrets:
        assert secret not in metadata


def test_image_healthcheck_turns_healthy_through_readyz(stack: Stack, image: str, report: Report) -> None:
    """The Dockerfile's own HEALTHCHECK (compose replaces it with its own): a container of the image
    alone, beside the stack's database."""
    healthcheck = stack.inspect(image)["Config"]["Healthcheck"]
    user, database = stack.env_value("POSTGRES_USER"), stack.env_value("POSTGRES_DB")
    url = f"postgresql://{user}:{stack.env_value('POSTGRES_PASSWORD')}@db:5432/{database}"
    name = f"{stack.project}-image-healthcheck"

    stack.docker(
        "run", "--detach", "--name", name, "--label", f"{TEST_LABEL}={stack.project}",
        "--network", f"{stack.project}_default", "--env", f"FACEREC_DATABASE_URL={url}", image,
    )  # fmt: skip
    try:
        seconds = stack.wait_healthy([name])
        log = stack.inspect(name)["State"]["Health"]["Log"]
    finally:
        stack.docker("rm", "--force", "--volumes", name, check=False)

    report.line(f"image HEALTHCHECK healthy {seconds:.1f} s after docker run")
    assert "/readyz" in " ".join(healthcheck["Test"])
    assert log[-1]["ExitCode"] == 0
