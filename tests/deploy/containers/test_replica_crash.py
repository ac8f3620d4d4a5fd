"""One app replica killed under load: the other keeps answering, and compose's restart policy
brings the killed one back to healthy."""

from __future__ import annotations

import os
import signal

from tests.deploy.containers import load
from tests.deploy.containers.conftest import Replica, Report, unique
from tests.deploy.containers.stack import HEALTHY_DEADLINE_S, Stack


def test_a_killed_replica_is_restarted_by_the_restart_policy_while_the_other_keeps_answering(
    stack: Stack, replicas: list[Replica], admin_key: str, report: Report
) -> None:
    victim, survivor = replicas
    collection = unique("replica-crash")
    survivor_api = load.client(base_url=survivor.url, key=admin_key)
    victim_api = load.client(base_url=victim.url, key=admin_key)
    seeded = load.enroll(survivor_api, subject="seed", collection=collection, image=load.photo())
    assert seeded.status_code == 201, seeded.text
    before = stack.inspect(victim.container)
    survived, killed = load.Timeline(), load.Timeline()
    killed.start = survived.start
    probe = load.photo()

    with (
        load.Loop(
            name="survivor",
            request=lambda: load.identify(survivor_api, collection=collection, image=probe),
            timeline=survived,
        ) as survivor_loop,
        load.Loop(
            name="victim",
            request=lambda: load.identify(victim_api, collection=collection, image=probe),
            timeline=killed,
        ) as victim_loop,
    ):
        survivor_loop.wait_for(load.ok_streak(3, after=0.0), deadline_s=60, what="200s before the kill")
        for timeline in (survived, killed):
            timeline.mark(f"SIGKILL to {victim.container}'s facerec serve (PID 1) from the host")
        # `docker kill` would be a manual stop, which restart policies leave alone by design: a crash
        # (the OOM killer, a segfault) is the process dying under Docker, as here.
        os.kill(int(before["State"]["Pid"]), signal.SIGKILL)
        load.wait_until(
            lambda: stack.inspect(victim.container)["RestartCount"] > before["RestartCount"],
            deadline_s=60,
            what="the restart policy restarting the replica",
        )
        for timeline in (survived, killed):
            timeline.mark("restarted by the restart policy")
        seconds = stack.wait_healthy([victim.container], deadline_s=HEALTHY_DEADLINE_S)
        for timeline in (survived, killed):
            timeline.mark("healthy again")
        healthy_at = killed.now()
        victim_loop.wait_for(load.ok_streak(3, after=healthy_at), deadline_s=60, what="200s from the restarted one")
    survivor_api.close()
    victim_api.close()

    report.line(f"replica crash: {victim.container} killed, {survivor.container} under identify load")
    for name, timeline in ((survivor.container, survived), (victim.container, killed)):
        report.line(f"  {name}:")
        for line in timeline.lines():
            report.line(f"    {line}")
    report.line(f"  healthy {seconds:.1f} s after its restart")
    answers = survived.snapshot()
    assert answers
    assert {item.label for item in answers} == {"200"}
    assert stack.health(survivor.container) == "healthy"
    assert stack.inspect(victim.container)["State"]["StartedAt"] != before["State"]["StartedAt"]
