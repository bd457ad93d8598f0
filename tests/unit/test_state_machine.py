"""The blue/green state machine on the in-memory Swarm (tests/unit/swarm_sim.py): the
health gate failing at each of its checks, and the switch failing its verification.

Each test deploys r1 of the local profile's develop (blue goes live), then r2, whose
new colour (green) fails somewhere. What must hold every time: the error names the
check that failed and what it saw, green is removed, blue stays live and served, its
file and labels still say blue and r1, nobody saw a failed request, no lock is left.
The deploys stopped at every instant are tests/unit/test_interrupts.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import pytest
import yaml

from swarm_deploy import config, usecases
from swarm_deploy.engine import Result
from swarm_deploy.errors import CommandError, DeployError, GateError
from swarm_deploy.pipeline import Project
from swarm_deploy.usecases import DeployRequest, Outcome
from tests.unit.swarm_sim import SWITCH, Edge, Sim, live_script, read_script
from tests.unit.test_interrupts import (
    BRANCH,
    EDGE,
    FakeTime,
    Notes,
    assert_converged,
    first_two_releases,
    project,
    run,
    sim,
)

__all__ = ["project", "sim"]  # the fixtures of the kill-anywhere matrix

GREEN_BACKEND = "gaia-develop-green_backend"
NEXT = (
    "rolled back: removed gaia-develop-green; gaia-develop-blue stays live.\n"
    "next: fix the release, then `swarm-deploy deploy --branch develop`; "
    "`swarm-deploy status --branch develop` shows what runs"
)
# the local profile's gate: 3 consecutive 200s, a probe every 0.25 s from the moment the
# tasks run, 120 s, 30 s of start grace: a path failing since probe 119 ends the gate at
# probe 121, at 30 s
PROBES = 121
REFUSED = (
    "no 3 consecutive 200s through the preview route, 3 failed in a row after the 30s start grace"
)


def gate_error(detail: str) -> str:
    return f"gate for green: {detail}\n{NEXT}"


def probes_failed(api_health: str) -> str:
    return gate_error(
        f"{REFUSED}: {api_health}; /health: ok, its last {PROBES} of {PROBES} probes answered 200"
    )


def assert_blue_r1_untouched(sim: Sim) -> None:
    """r1 in blue is what runs, is served and is recorded, as before the deploy."""
    assert_converged(sim, "r1")
    assert sim.edge(EDGE).served == "blue"
    assert sorted({s.labels["com.docker.stack.namespace"] for s in sim.services.values()}) == [
        "gaia-develop-blue", "gaia-develop-edge", "gaia-shared",
    ]  # fmt: skip


class Timeline(FakeTime):
    """FakeTime on which something happens once its moment has come."""

    def __init__(self, at: float, event: Callable[[], None]) -> None:
        super().__init__()
        self.events = [(at, event)]

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        due = [event for at, event in self.events if at <= self.t]
        self.events = [(at, event) for at, event in self.events if at > self.t]
        for event in due:
            event()


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        pytest.param(
            ["500"],
            f"/api/health: {PROBES} probes, best run 0 of 3 consecutive 200s, last answer 500",
            id="the first probe, and each after it",
        ),
        pytest.param(
            ["200", "500"],
            f"/api/health: {PROBES} probes, best run 1 of 3 consecutive 200s, last answer 500",
            id="the second, after one success",
        ),
        pytest.param(
            ["200", "200", "500"],
            f"/api/health: {PROBES} probes, best run 2 of 3 consecutive 200s, last answer 500",
            id="the last of N",
        ),
        pytest.param(
            ["200", "timeout"],
            f"/api/health: {PROBES} probes, best run 1 of 3 consecutive 200s, "
            "last answer no answer",
            id="a probe that times out",
        ),
    ],
)
def test_a_health_path_that_fails_is_never_switched_to(
    project: Project, sim: Sim, answers: list[str], expected: str
) -> None:
    first_two_releases(project, sim)
    sim.answers["r2", "/api/health"] = answers
    failed = run(project, sim, "r2")
    assert isinstance(failed, DeployError)
    assert str(failed) == probes_failed(expected)
    assert_blue_r1_untouched(sim)


def test_a_failure_restarts_the_count_and_the_gate_passes_on_n_in_a_row(
    project: Project, sim: Sim
) -> None:
    """The control for the cases above: one 500 between 200s costs a restart, no more."""
    first_two_releases(project, sim)
    sim.answers["r2", "/api/health"] = ["200", "200", "500", "200"]
    assert isinstance(run(project, sim, "r2"), Outcome)
    assert_converged(sim, "r2")
    assert sim.edge(EDGE).served == "green"


def test_failed_probes_within_the_start_grace_are_forgiven(project: Project, sim: Sim) -> None:
    """An app that answers 500 for its first 29 s after its tasks run, then 200, passes."""
    first_two_releases(project, sim)
    sim.answers["r2", "/api/health"] = ["500"] * 29 + ["200"]
    assert isinstance(run(project, sim, "r2"), Outcome)
    assert sim.edge(EDGE).served == "green"


def test_probing_starts_as_the_tasks_run(project: Project, sim: Sim) -> None:
    """A healthy release passes a gate whose timeout is shorter than its start grace: its
    3 probes come at 0, 1 and 2 s, not after the grace."""
    first_two_releases(project, sim)
    gate = config.Gate(consecutive=3, interval=1.0, timeout=10.0, start_grace=30.0)
    quick = replace(project, config=replace(project.config, gate=gate))
    assert isinstance(run(quick, sim, "r2"), Outcome)
    assert sim.edge(EDGE).served == "green"


def test_rounds_of_probes_start_every_interval_however_long_a_probe_takes(
    project: Project, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probes 0.3 s long at a 0.5 s interval: the 3 come at 0, 0.5 and 1 s, not 0.8 s
    apart."""
    first_two_releases(project, sim)
    time = FakeTime()
    probed: list[float] = []
    curl = sim._curl

    def slow_curl(edge_service: str, edge: Edge, command: list[str]) -> Result:
        if "%{http_code}\\n" in command:  # the gate's probe; the switch asks for headers
            probed.append(time.t)
            time.t += 0.3
        return curl(edge_service, edge, command)

    monkeypatch.setattr(sim, "_curl", slow_curl)
    gate = replace(project.config.gate, interval=0.5)
    paced = replace(project, config=replace(project.config, gate=gate))
    usecases.deploy(DeployRequest(paced, BRANCH, "r2"), Notes(), time.clock())
    assert [b - a for a, b in itertools.pairwise(probed)] == pytest.approx([0.5, 0.5])


def test_a_task_that_crashes_ends_the_gate_at_once(project: Project, sim: Sim) -> None:
    first_two_releases(project, sim)
    sim.task_states[GREEN_BACKEND] = ("failed", "task: non-zero exit (1)")
    clock = FakeTime()
    with pytest.raises(DeployError) as failed:
        usecases.deploy(DeployRequest(project, BRANCH, "r2"), Notes(), clock.clock())
    assert str(failed.value) == gate_error(
        "gaia-develop-green_backend: task.1 failed: task: non-zero exit (1) (exit code 1)"
    )
    assert clock.t == 0  # no probe was waited for
    assert_blue_r1_untouched(sim)


def test_a_task_that_crashes_while_the_paths_answer_200_ends_the_gate(
    project: Project, sim: Sim
) -> None:
    """Two probes in (the third would pass the gate), the backend's task exits."""
    first_two_releases(project, sim)
    crash = Timeline(0.5, lambda: sim.task_states.update({GREEN_BACKEND: ("failed", "OOM")}))
    with pytest.raises(DeployError) as failed:
        usecases.deploy(DeployRequest(project, BRANCH, "r2"), Notes(), crash.clock())
    assert str(failed.value) == gate_error(
        "gaia-develop-green_backend: task.1 failed: OOM (exit code 1)"
    )
    assert_blue_r1_untouched(sim)


def test_tasks_that_never_run_fail_the_gate_at_its_timeout(project: Project, sim: Sim) -> None:
    first_two_releases(project, sim)
    sim.task_states[GREEN_BACKEND] = ("starting", "")
    failed = run(project, sim, "r2")
    assert isinstance(failed, DeployError)
    assert str(failed) == gate_error(
        "not every task running and healthy within 120s: gaia-develop-green_backend 0/2 (starting)"
    )
    assert_blue_r1_untouched(sim)


def test_a_first_deploy_that_fails_its_gate_leaves_the_branch_in_maintenance(
    project: Project, sim: Sim
) -> None:
    sim.failing.add("r1")
    failed = run(project, sim, "r1")
    assert isinstance(failed, DeployError)
    assert str(failed) == (
        f"gate for blue: {REFUSED}: "
        f"/api/health: {PROBES} probes, best run 0 of 3 consecutive 200s, last answer 500; "
        f"/health: {PROBES} probes, best run 0 of 3 consecutive 200s, last answer 500\n"
        "rolled back: removed gaia-develop-blue; no colour was live: the branch answers 503 "
        "(maintenance).\n"
        "next: fix the release, then `swarm-deploy deploy --branch develop`; "
        "`swarm-deploy status --branch develop` shows what runs"
    )
    assert not sim.stack("gaia-develop-blue")
    assert (sim.edge(EDGE).file, sim.edge(EDGE).served) == (None, None)
    assert "swarm-deploy.live-colour" not in sim.services[EDGE].labels
    assert not [n for n in sim.configs if n.endswith("_lock")]


def test_nginx_that_keeps_serving_the_old_colour_after_the_switch_is_undone(
    project: Project, sim: Sim
) -> None:
    """An nginx.conf from before live/ reads no colour from it."""
    first_two_releases(project, sim)
    sim.edge(EDGE).stuck = True
    failed = run(project, sim, "r2")
    assert isinstance(failed, DeployError)
    assert str(failed) == (
        "after the switch to green, the public route gave /api/health -> blue, /health -> blue"
        f"\n{NEXT}"
    )
    assert_blue_r1_untouched(sim)


def test_a_colour_live_cannot_name_is_undone(project: Project, sim: Sim) -> None:
    first_two_releases(project, sim)
    error = "sh: 1: cannot create /etc/nginx/live/green: Read-only file system"
    sim.edge(EDGE).write_error = error
    failed = run(project, sim, "r2")
    assert isinstance(failed, DeployError)
    assert str(failed) == (
        f"could not name green in /etc/nginx/live: {error}\n"
        f"naming the previous colour again: could not name blue in /etc/nginx/live: {error}\n"
        f"{NEXT}"
    )
    assert_blue_r1_untouched(sim)
    # nginx served blue all along: the undo finds it so and names nothing
    assert sim.log[-5:-1] == [
        live_script(f"container-of-{EDGE}", "green", *SWITCH),
        read_script(f"container-of-{EDGE}", "http://127.0.0.1/api/health"),
        read_script(f"container-of-{EDGE}"),
        "stack rm gaia-develop-green",
    ]  # then the lock is freed


def test_a_singleton_added_to_the_config_starts_although_the_old_colour_never_had_it(
    project: Project, sim: Sim
) -> None:
    """r1 ran without the bot; r2's config adds it. Moving the singletons stopped the old
    colour's bot, which does not exist: after the switch, the deploy failed with docker's
    "not found", left the bot stopped in green and blue running beside it."""
    path = project.config.root / "swarm-deploy.yml"
    with_bot = path.read_text()
    data = yaml.safe_load(with_bot)
    del data["services"]["bot"], data["images"]["bot"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert isinstance(run(Project.load(path), sim, "r1"), Outcome)
    path.write_text(with_bot)
    outcome = run(Project.load(path), sim, "r2")
    assert isinstance(outcome, Outcome), outcome
    assert_converged(sim, "r2")


def test_when_nginx_stops_answering_during_the_switch_neither_colour_is_removed(
    project: Project, sim: Sim
) -> None:
    """nginx died as the switch ran: which colour users get once it is back cannot be
    told, so removing either could leave them nothing."""
    first_two_releases(project, sim)
    sim.edge(EDGE).dies_on_switch = True
    failed = run(project, sim, "r2")
    assert isinstance(failed, DeployError)
    assert str(failed) == (
        "after the switch to green, the public route gave /api/health -> no colour header, "
        "/health -> no colour header\n"
        "could not tell which colour nginx serves, so neither colour was removed.\n"
        "next: once the branch's nginx answers, `swarm-deploy deploy --branch develop` "
        "repairs the rest"
    )
    assert sim.stack("gaia-develop-blue")
    assert sim.stack("gaia-develop-green")
    # live/ names blue again: nginx serves blue when it is back
    assert sim.edge(EDGE).file == "blue"
    assert sim.services[EDGE].labels["swarm-deploy.release"] == "r1"
    assert not [n for n in sim.configs if n.endswith("_lock")]
    # nginx is back (on blue, from its file); the next deploy converges
    edge = sim.edge(EDGE)
    edge.dies_on_switch = edge.down = False
    assert isinstance(run(project, sim, "r2"), Outcome)
    assert_converged(sim, "r2")


def test_a_gate_that_fails_is_the_cause_of_the_deploy_error(project: Project, sim: Sim) -> None:
    """What stopped the deploy stays reachable by its class (GateError), not just by its
    words in the message."""
    first_two_releases(project, sim)
    sim.answers["r2", "/api/health"] = ["500"]
    failed = run(project, sim, "r2")
    assert isinstance(failed, DeployError)
    assert isinstance(failed.__cause__, GateError)


def test_a_switch_that_cannot_be_recorded_says_the_new_colour_is_live(
    project: Project, sim: Sim
) -> None:
    """The switch took effect, then recording it on the edge's labels failed: the error
    says green is live (it is what users get) and what the next deploy repairs, not only
    docker's words."""
    first_two_releases(project, sim)
    record = "service update --detach --no-resolve-image --label-add"
    sim.refused[record] = "Error response from daemon: rpc error: code = Unavailable"
    failed = run(project, sim, "r2")
    assert isinstance(failed, DeployError)
    assert isinstance(failed.__cause__, CommandError)
    assert str(failed).endswith(
        "code = Unavailable\n"
        "the switch had happened: gaia-develop-green is live with release r2, but recording "
        "it and moving the singletons did not finish; gaia-develop-blue still runs.\n"
        "next: `swarm-deploy deploy --branch develop` repairs the record and the singletons"
    ), str(failed)
    assert sim.edge(EDGE).served == "green"
    assert not [n for n in sim.configs if n.endswith("_lock")]
    del sim.refused[record]
    assert isinstance(run(project, sim, "r2"), Outcome)
    assert_converged(sim, "r2")


def colours_running(sim: Sim) -> list[str]:
    return [c for c in ("blue", "green") if sim.stack(f"gaia-develop-{c}")]


def test_a_deploy_returns_once_live_and_leaves_the_old_colour_to_the_drain_job(
    project: Project, sim: Sim
) -> None:
    """The deploy returns after the switch is recorded; the job removes blue later."""
    first_two_releases(project, sim)
    sim.drains = "pending"
    assert isinstance(run(project, sim, "r2"), Outcome)
    assert sim.edge(EDGE).served == "green"
    assert sim.services[EDGE].labels["swarm-deploy.release"] == "r2"
    assert colours_running(sim) == ["blue", "green"]
    job = sim.services["gaia-develop-drain"]
    assert job.labels["swarm-deploy.drain-of"] == "gaia-develop-blue"


@pytest.mark.parametrize("drain", ["pending", "failed"])
def test_a_deploy_while_a_drain_is_handed_off_finishes_it_before_reusing_the_colour(
    project: Project, sim: Sim, drain: str
) -> None:
    """r3 goes to blue, which the drain job of r2's deploy is to remove: r3 waits for the job
    (at most edge.drain + 60 s), then removes it and blue's r2-era services itself, so the
    job can never remove the blue r3 starts."""
    first_two_releases(project, sim)
    sim.drains = drain
    assert isinstance(run(project, sim, "r2"), Outcome)
    sim.drains = "done"
    notes = Notes()
    usecases.deploy(DeployRequest(project, BRANCH, "r3"), notes, FakeTime().clock())
    assert "note the drain job did not remove gaia-develop-blue: removing it now" in notes.lines
    assert "gaia-develop-drain" not in sim.services
    assert sim.edge(EDGE).served == "blue"
    assert_converged(sim, "r3")
    removed = sim.log.index("stack rm gaia-develop-blue")
    (redeployed,) = [
        i for i, entry in enumerate(sim.log)
        if entry.startswith("stack deploy") and entry.endswith(" gaia-develop-blue") and i > removed
    ]  # fmt: skip
    assert removed < redeployed
