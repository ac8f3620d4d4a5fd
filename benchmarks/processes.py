"""The processes of a benchmarked service, and the CPU they use (Linux /proc)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import BenchmarkError


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces


def process_tree(root: int) -> list[int]:
    """root and all its descendants."""
    parents = {
        int(entry.name): _parent_pid(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit()
    }
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def postgres_pids(pgdata: Path) -> list[int] | None:
    """The embedded Postgres's processes (pg_ctl detaches it from the service, so it is not in its tree)."""
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return process_tree(postmaster)


def service_pid() -> int:
    """The `facerec serve` process: our child whose command line runs app.cli."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or _parent_pid(int(entry.name)) != os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"app.cli" in command and b"serve" in command:
            return int(entry.name)
    raise BenchmarkError("cannot find the `facerec serve` process among this script's children")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process, all its threads; 0 for a process that has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(all, idle) CPU ticks of the whole machine since boot, summed over its cores."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values), values[3] + values[4]  # idle + iowait


@dataclass(frozen=True)
class CpuSnapshot:
    service_s: float
    postgres_s: dict[int, float]
    ticks: tuple[int, int]


@dataclass(frozen=True)
class CpuUse:
    """CPU spent during a run, per image served, and how busy the machine's cores were."""

    service_ms_per_image: float
    postgres_ms_per_image: float | None
    machine_busy: float  # 0..1 over all cores, everything on the machine included (the client too)


class CpuMeter:
    """Snapshots of the service's and its Postgres's CPU time, to charge a run's CPU to its images."""

    def __init__(self, *, service: int, pgdata: Path | None) -> None:
        self.service = service
        self.pgdata = pgdata

    def snapshot(self) -> CpuSnapshot:
        pids = postgres_pids(self.pgdata) if self.pgdata is not None else None
        return CpuSnapshot(
            service_s=cpu_seconds(self.service),
            postgres_s={pid: cpu_seconds(pid) for pid in pids or []},
            ticks=machine_ticks(),
        )

    def since(self, before: CpuSnapshot, *, images: int) -> CpuUse:
        after = self.snapshot()
        per_image = 1000.0 / max(images, 1)
        # Backends that started during the run count in full; ones that exited are lost (rare: pooled).
        postgres = sum(seconds - before.postgres_s.get(pid, 0.0) for pid, seconds in after.postgres_s.items())
        all_ticks = after.ticks[0] - before.ticks[0]
        idle_ticks = after.ticks[1] - before.ticks[1]
        return CpuUse(
            service_ms_per_image=round((after.service_s - before.service_s) * per_image, 1),
            postgres_ms_per_image=round(postgres * per_image, 1) if after.postgres_s else None,
            machine_busy=round(1.0 - idle_ticks / all_ticks, 3) if all_ticks > 0 else 0.0,
        )
