"""The README's backup and restore, run as it writes them: a dump while the service runs, a fresh
volume, the restore, and the enrolments (and keys) are back."""

from __future__ import annotations

import re
import time

from tests.conftest import REPO_ROOT
from tests.deploy.containers import load
from tests.deploy.containers.conftest import Replica, Report, unique
from tests.deploy.containers.stack import Stack

README_VOLUME = "facerec_pgdata"
README_DUMP = "facerec-2026-11-28.dump"


def readme_commands(section: str) -> list[list[str]]:
    """The commands of each ```bash block of a README section: continuations joined, comments dropped."""
    text = (REPO_ROOT / "README.md").read_text()
    body = re.split(r"\n##+ ", text.split(f"\n### {section}\n", 1)[1], maxsplit=1)[0]
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", body, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", "", block)
        blocks.append([re.sub(r"\s+#\s.*$", "", line).strip() for line in joined.splitlines() if line.strip()])
    return blocks


def in_this_project(command: str, *, stack: Stack, dump: str) -> str:
    """The README's names for this run's: its volume carries the project name, its dump a date."""
    return command.replace(README_VOLUME, f"{stack.project}_pgdata").replace(README_DUMP, dump)


def table_exists(stack: Stack, table: str) -> bool:
    query = f"SELECT to_regclass('public.{table}') IS NOT NULL"
    output = stack.compose("exec", "-T", "db", "sh", "-c", f'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "{query}"')
    return output.strip() == "t"


def test_readme_backup_and_restore_bring_back_every_enrolment(
    stack: Stack, replicas: list[Replica], admin_key: str, report: Report
) -> None:
    dump_block, restore_block = readme_commands("Backup and restore")[:2]
    collection, subject = unique("backup"), unique("al-gore")
    with load.client(base_url=replicas[0].url, key=admin_key) as api:
        enrolled = [
            load.enroll(api, subject=subject, collection=collection, image=load.distinct_photo(index))
            for index in (1, 2, 3)
        ]
    assert [response.status_code for response in enrolled] == [201, 201, 201]
    subject_id = enrolled[0].json()["subject_id"]

    start = time.monotonic()
    (dump_command,) = dump_block
    stack.shell(dump_command)
    (dump_file,) = stack.workdir.glob("facerec-*.dump")
    dumped = time.monotonic()
    emptied = False
    for command in restore_block:
        stack.shell(in_this_project(command, stack=stack, dump=dump_file.name))
        if command.startswith("docker compose up -d --wait db"):
            emptied = not table_exists(stack, "faces")
    restored = time.monotonic()
    (app, *_) = stack.containers("app")
    stack.wait_healthy([app])
    with load.client(base_url=stack.base_url(app), key=admin_key) as api:
        faces = api.get(f"/subjects/{subject_id}/faces")
        identified = load.identify(api, collection=collection, image=load.photo("lfw_al_gore/2.jpg"))

    report.line(
        f"backup: pg_dump {dumped - start:.1f} s ({dump_file.stat().st_size / 1024:.0f} KiB);"
        f" down, new volume, pg_restore and up {restored - dumped:.1f} s; app healthy"
        f" {time.monotonic() - restored:.1f} s later"
    )
    assert restore_block[0] == "docker compose down", "the README restores with the app stopped"
    assert emptied, "the database was not empty before the restore: the volume was not replaced"
    assert faces.status_code == 200, faces.text
    assert sorted(face["id"] for face in faces.json()["items"]) == sorted(r.json()["face_id"] for r in enrolled)
    assert identified.status_code == 200, identified.text
    assert identified.json()["faces"][0]["match"]["subject_id"] == subject_id
