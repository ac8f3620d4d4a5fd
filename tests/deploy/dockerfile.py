"""Just enough of a Dockerfile parser to check ours statically: instructions, stages, flags."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    """One instruction with its continuation lines joined; comments inside it dropped."""

    keyword: str
    arguments: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON-array form of CMD, ENTRYPOINT, SHELL or HEALTHCHECK ... CMD."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1]
        parsed = json.loads(text)
        assert isinstance(parsed, list), f"line {self.line}: {self.keyword} is not in exec form"
        return [str(item) for item in parsed]

    def key_values(self) -> dict[str, str]:
        """ARG/ENV pairs: `NAME=value ...` (an ARG without default maps to "")."""
        pairs: dict[str, str] = {}
        for token in shlex.split(self.arguments):
            name, _, value = token.partition("=")
            pairs[name] = value
        return pairs


@dataclass
class Stage:
    """A FROM and the instructions up to the next FROM."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(instruction.key_values())
        return values


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def instructions(self, keyword: str) -> list[Instruction]:
        return [instruction for stage in self.stages for instruction in stage.all(keyword)]


def instructions(text: str) -> list[Instruction]:
    result: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # Docker drops comment lines inside a continued instruction
        if not pending:
            start = number
        pending.append(line[:-1].rstrip() if line.endswith("\\") else line)
        if not line.endswith("\\"):
            keyword, _, arguments = " ".join(part for part in pending if part).partition(" ")
            result.append(Instruction(keyword=keyword.upper(), arguments=arguments.strip(), line=start))
            pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return result


def parse(path: Path = DOCKERFILE) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions(path.read_text()):
        if instruction.keyword == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", instruction.arguments, flags=re.IGNORECASE)
            assert match is not None, f"line {instruction.line}: unexpected FROM {instruction.arguments}"
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif not stages:
            assert instruction.keyword == "ARG", f"line {instruction.line}: only ARG may precede the first FROM"
            global_args.update(instruction.key_values())
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(global_args=global_args, stages=stages)


def substitute(text: str, variables: dict[str, str]) -> str:
    """Expand ${NAME} and $NAME the way Docker expands ARG values in FROM and ENV."""
    return re.sub(
        r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)",
        lambda match: variables.get(match.group(1) or match.group(2), match.group(0)),
        text,
    )


def run_mounts(instruction: Instruction) -> list[dict[str, str]]:
    """The --mount=k=v,... options of a RUN, as dicts."""
    mounts = []
    for option in re.findall(r"--mount=(\S+)", instruction.arguments):
        mounts.append(dict(item.partition("=")[::2] for item in option.split(",")))
    return mounts
