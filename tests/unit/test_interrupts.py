"""A deploy stopped at any instant converges, on an in-memory Swarm (tests/unit/swarm_sim.py).

Each test deploys release r1 of the local profile's develop (blue goes live), starts r2
with a fault point set (interrupts.py: the deployer signals itself there), then runs
the next command with no fault, as a person or CI would. What must hold: no request
failed at any moment (the sim counts each instant nginx served a colour whose stack was
gone), one colour runs, nginx, its file and the labels agree, the singleton runs in the
live colour, no lock is left, and only then does a rerun say "nothing to do".

A SIGKILL is modelled by the sim dying: nothing the process would still send reaches it.
SIGTERM is what the signal handler raises (interrupts.Interrupted), so the deployer's own
clean-up runs, as it does in a real process (tests/engine/test_interrupts.py).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from swarm_deploy import gate, interrupts, profiles, usecases
from swarm_deploy.errors import DeployError
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import Step
from swarm_deploy.usecases import Outcome
from tests.conftest import ROOT
from tests.unit.swarm_sim import Dead, Sim, use_sim

BRANCH = "develop"
EDGE = "gaia-develop-edge_nginx"


@dataclass
class Notes:
    """A Reporter that keeps what it is told."""

    lines: list[str] = field(default_factory=list)

    def begin(self, number: int, total: int, step: Step) -> None:
        self.lines.append(f"begin {step.phase}")

    def end(self, step: Step, seconds: float, ok: bool) -> None:
        self.lines.append(f"end {step.phase} {'ok' if ok else 'failed'}")

    def skipped(self, number: int, total: int, step: Step) -> None:
        self.lines.append(f"skipped {step.phase}")

    def status(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        self.lines.append(f"note {text}")


class FakeTime:
    """gate.Clock that never waits: sleeping moves time on."""

    def __init__(self) -> None:
        self.t = 0.0

    def clock(self) -> gate.Clock:
        return gate.Clock(now=lambda: self.t, sleep=self.sleep)

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def project(tmp_path: Path) -> Project:
    shutil.copytree(ROOT / "examples/gaia/dev-secrets", tmp_path / "examples/gaia/dev-secrets")
    merged = profiles.merged_data(ROOT / "swarm-deploy.local.yml")
    (tmp_path / "swarm-deploy.yml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return Project.load(tmp_path / "swarm-deploy.yml")


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Sim:
    the_sim = Sim()
    use_sim(monkeypatch, the_sim)

    def fire(signal_name: str) -> None:
        if signal_name == "KILL":
            the_sim.die()
        interrupts.receive(signal_name)

    monkeypatch.setattr(interrupts, "fire", fire)
    monkeypatch.setenv(interrupts.FAULT_ENV, "")  # run() sets it; restored after the test
    return the_sim


def run(
    project: Project, sim: Sim, release: str, fault: str = "", rollback: bool = False
) -> Outcome | BaseException:
    """One `swarm-deploy deploy` (or `rollback`) process: its outcome, or what stopped it."""
    interrupts._fired.clear()
    sim.revive()
    os.environ[interrupts.FAULT_ENV] = fault
    clock = FakeTime().clock()
    try:
        if rollback:
            return usecases.rollback(usecases.RollbackRequest(project, BRANCH), Notes(), clock)
        return usecases.deploy(usecases.DeployRequest(project, BRANCH, release), Notes(), clock)
    except (DeployError, Dead, interrupts.Interrupted) as exc:
        return exc


def time_passes(sim: Sim) -> None:
    """A killed deployer leaves its lock, whose heartbeat stops: a minute later (twice
    lock.stale_after) the next command takes it over."""
    sim.advance(60)


def assert_converged(sim: Sim, release: str) -> None:
    edge = sim.edge(EDGE)
    stacks = [c for c in ("blue", "green") if sim.stack(f"gaia-develop-{c}")]
    assert stacks == [edge.served], (stacks, edge)
    live = edge.served
    assert edge.file == live
    labels = sim.services[EDGE].labels
    assert labels["swarm-deploy.live-colour"] == live
    assert labels["swarm-deploy.release"] == release
    assert sim.services[f"gaia-develop-{live}_bot"].replicas == 1
    assert not [n for n in sim.configs if n.endswith("_lock")]
    assert sim.outages == []


def first_two_releases(project: Project, sim: Sim) -> None:
    assert isinstance(run(project, sim, "r1"), Outcome)
    assert sim.edge(EDGE).served == "blue"


def deploy_phases(project: Project, sim: Sim, first: bool) -> list[str]:
    """The phases a deploy runs, in order, each once: the branch's first (r1), or r2 over
    live r1."""
    sim.reset()
    if not first:
        first_two_releases(project, sim)
    notes = Notes()
    usecases.deploy(usecases.DeployRequest(project, BRANCH, "r2"), notes, FakeTime().clock())
    phases = [line.split()[1] for line in notes.lines if line.startswith("begin ")]
    return list(dict.fromkeys(phases))


def points(phases: list[str]) -> list[str]:
    return [
        *(f"{when}:{phase}" for phase in phases for when in ("before", "after")),
        "switch:running",
        "switch:verified",
    ]


# a redeploy skips what r1 ensured (its secrets, nginx test, shared stack, data jobs and
# edge, and the pruning of shared leftovers it leaves none of: listed, never begun)
REDEPLOY = (
    "build", "publish", "render", "migrate", "colour", "gate", "switch", "record",
    "singletons", "drain", "prune",
)  # fmt: skip
# a first deploy creates secrets, tests its nginx config and deploys its edge; it has no
# old colour to drain
FIRST = (
    "build", "publish", "render", "nginx", "secrets", "shared", "databases", "edge", "migrate",
    "colour", "gate", "switch", "record", "singletons", "prune",
)  # fmt: skip


@pytest.mark.parametrize("signal_name", ["KILL", "TERM"])
@pytest.mark.parametrize("first", [True, False], ids=["first deploy", "redeploy"])
def test_a_deploy_stopped_anywhere_converges_on_the_next_and_nobody_notices(
    project: Project, sim: Sim, signal_name: str, first: bool
) -> None:
    phases = deploy_phases(project, sim, first)
    assert tuple(phases) == (FIRST if first else REDEPLOY)
    for point in points(phases):
        sim.reset()
        if not first:
            first_two_releases(project, sim)
        stopped = run(project, sim, "r2", f"{point}:{signal_name}")
        assert not isinstance(stopped, Outcome), f"{point}: the fault point never fired"
        if signal_name == "KILL":
            time_passes(sim)
        else:
            assert not [n for n in sim.configs if n.endswith("_lock")], point
        again = run(project, sim, "r2")
        assert isinstance(again, Outcome), f"{point}: {again}"
        assert_converged(sim, "r2")
        rerun = run(project, sim, "r2")
        assert isinstance(rerun, Outcome)
        assert rerun.plan.up_to_date, f"{point}: {[s.title for s in rerun.plan.steps]}"


@pytest.mark.parametrize("point", ["switch:running", "switch:verified"])
def test_a_signal_during_or_after_the_switch_keeps_the_new_colour_live(
    project: Project, sim: Sim, point: str
) -> None:
    """Item 1: it used to remove the colour nginx had just switched to: all 503. A signal
    while the switch's one command runs in nginx waits for its verdict (interrupts.held):
    the deployer then sees what nginx serves, never a switch still going on."""
    first_two_releases(project, sim)
    stopped = run(project, sim, "r2", f"{point}:TERM")
    assert isinstance(stopped, DeployError)
    assert str(stopped).startswith(
        "interrupted (SIGTERM)\nthe switch had happened: gaia-develop-green is live with "
        "release r2, recorded; gaia-develop-blue still runs and the next deploy removes it."
    )
    assert sim.edge(EDGE).served == "green"
    assert sim.services[EDGE].labels["swarm-deploy.release"] == "r2"
    assert sim.outages == []


def live_names_what_nginx_does_not_serve(project: Project, sim: Sim) -> None:
    """r1 (blue) live; r2's deploy killed as its switch began, and live/ names green
    although nginx serves blue: what an nginx.conf from before live/ leaves (it read its
    colour from a file on a reload), or a switch cut off before swarm-deploy ran it in
    one command."""
    first_two_releases(project, sim)
    assert isinstance(run(project, sim, "r2", "switch:running:KILL"), Dead)
    time_passes(sim)
    sim.edge(EDGE).file = "green"
    sim.edge(EDGE).stuck = True


def test_what_live_names_is_not_believed_over_what_nginx_serves(project: Project, sim: Sim) -> None:
    """Item 2: with live/ naming green while nginx served blue, the next deploy took
    blue (what users were on) for the idle colour and, with a release that failed its
    gate, removed it: every request 503."""
    live_names_what_nginx_does_not_serve(project, sim)
    assert sim.edge(EDGE).served == "blue"
    sim.failing.add("r3")
    failed = run(project, sim, "r3")
    assert isinstance(failed, DeployError)
    assert "gate for green" in str(failed)
    assert sim.edge(EDGE).served == "blue"
    assert sim.edge(EDGE).file == "blue"
    assert sim.outages == []


def test_nothing_to_do_only_when_the_whole_desired_state_holds(project: Project, sim: Sim) -> None:
    """Item 4: killed during the drain, the old colour kept running; killed between the
    singletons' stop and start, the bot ran nowhere; the rerun said nothing to do."""
    first_two_releases(project, sim)
    assert isinstance(run(project, sim, "r2", "before:drain:KILL"), Dead)
    time_passes(sim)
    sim.services["gaia-develop-green_bot"].replicas = 0
    repair = run(project, sim, "r2")
    assert isinstance(repair, Outcome)
    assert repair.plan.repairs_only
    assert [s.title for s in repair.plan.steps] == [
        "remove gaia-develop-blue: it is not live",
        "run the singleton gaia-develop-green_bot",
    ]
    assert_converged(sim, "r2")


def test_labels_that_disagree_with_nginx_are_repaired_and_rollback_goes_back_one(
    project: Project, sim: Sim
) -> None:
    """Item 5: killed between the switch and the record, status reported the wrong colour
    and rollback went two releases back."""
    first_two_releases(project, sim)
    assert isinstance(run(project, sim, "r2"), Outcome)  # green r2
    assert isinstance(run(project, sim, "r3", "before:record:KILL"), Dead)  # blue r3, unrecorded
    time_passes(sim)
    back = run(project, sim, "", rollback=True)
    assert isinstance(back, Outcome), back
    assert back.plan.release.version == "r2"
    assert_converged(sim, "r2")
