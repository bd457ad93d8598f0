"""The locks of whole deploys on the in-memory Swarm (tests/unit/swarm_sim.py): two
deployers racing for one branch, a holder that died, a lock taken over while it is
held, the shared lock, and branches that do not wait for each other.

A second command runs "meanwhile" at a fault point of the first (interrupts.point): the
first is paused there, as a process would be while another one runs. Ages are the
sim's manager clock (Sim.advance). The lock's content names the holder's pid and host:
those of this test process. tests/unit/test_lock.py proves the lock alone, against a
fake of configs; tests/engine/test_locks.py against a real Swarm.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import pytest
import yaml

from swarm_deploy import interrupts, usecases
from swarm_deploy.errors import LockError, LockLostError, SharedStackError
from swarm_deploy.pipeline import Project
from swarm_deploy.usecases import LOCK_WAIT, DeployRequest, Outcome
from tests.unit.swarm_sim import Dead, Sim
from tests.unit.test_interrupts import (
    BRANCH,
    EDGE,
    FakeTime,
    Notes,
    assert_converged,
    sim,
)
from tests.unit.test_interrupts import project as local_project

__all__ = ["local_project", "sim"]  # the fixtures of the kill-anywhere matrix

# Heartbeats every 100 s of real time: none lands while a test runs, so every age below
# is the sim's clock alone.
STALE_AFTER = 600
HOLDER = f"pid {os.getpid()} on {socket.gethostname()}"
SINCE = "since 2026-11-30T12:00:00Z"


@pytest.fixture
def project(local_project: Project) -> Project:
    path = local_project.config.root / "swarm-deploy.yml"
    data = yaml.safe_load(path.read_text())
    data["lock"] = {"stale_after": f"{STALE_AFTER}s"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return Project.load(path)


@pytest.fixture
def meanwhile(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Callable[[], None]]]:
    """Callables run, in order, when a fault point with the signal MEANWHILE fires."""
    queued: list[Callable[[], None]] = []
    fire = interrupts.fire

    def run_queued(signal_name: str) -> None:
        if signal_name != "MEANWHILE":
            fire(signal_name)
            return
        while queued:
            queued.pop(0)()

    monkeypatch.setattr(interrupts, "fire", run_queued)
    yield queued
    assert not queued, "the fault point never fired"


def deploy(
    project: Project,
    release: str,
    branch: str = BRANCH,
    wait: float = 0,
    notes: Notes | None = None,
    actor: str = "bob",
    time: FakeTime | None = None,
) -> Outcome:
    """A command: by default bob's, started while alice's is paused, waiting `wait`."""
    request = DeployRequest(project, branch, release, actor=actor, lock_wait=wait)
    return usecases.deploy(request, notes or Notes(), (time or FakeTime()).clock())


def alices(project: Project, release: str, fault: str = "") -> Outcome:
    """alice's deploy of develop, stopped at `fault` if one is named."""
    arm(fault)
    return deploy(project, release, wait=LOCK_WAIT, actor="alice")


def locks(sim: Sim) -> list[str]:
    return sorted(name for name in sim.configs if name.endswith("_lock"))


def users_see(sim: Sim) -> tuple[object, ...]:
    """What runs, what nginx serves and says, and what the labels record."""
    edge = sim.edge(EDGE)
    services = {name: (s.image, s.replicas) for name, s in sim.services.items()}
    return (services, edge.served, edge.file, dict(sim.services[EDGE].labels))


def alive_refusal(action: str, subject: str, age: int, waited: str = "") -> str:
    """What the lock says of a live holder: `age` seconds since it was taken, and since
    its last heartbeat."""
    left = STALE_AFTER - age
    return (
        f"another {action} holds the lock of {subject}{waited}: alice ({action}, {HOLDER}) "
        f"{SINCE}, {age}s ago; last heartbeat {age}s ago.\n"
        f"It is alive: it refreshes its lock every 100s. Wait for it with --lock-wait SECONDS. "
        f"If it was stopped (killed, or its machine is off), its lock frees itself "
        f"{STALE_AFTER}s after its last heartbeat, in at most {left}s: run again with "
        f"--lock-wait {left + 4} or more."
    )


def test_a_second_deployer_of_the_branch_waits_then_refuses_naming_the_holder(
    project: Project, sim: Sim, meanwhile: list[Callable[[], None]]
) -> None:
    """bob waits --lock-wait 60 on his deploy's clock (FakeTime: it never sleeps), saying
    every 30 s whom he waits for, then refuses."""
    alices(project, "r1")
    before: list[tuple[object, ...]] = []

    def second() -> None:
        sim.advance(20)
        before.append(users_see(sim))
        notes, bobs_time = Notes(), FakeTime()
        with pytest.raises(LockError) as refused:
            deploy(project, "r3", wait=60, notes=notes, time=bobs_time)
        assert bobs_time.t == 60
        assert type(refused.value) is LockError
        assert str(refused.value) == alive_refusal(
            "deploy of develop r2", "branch develop", 20, " after waiting 60s"
        )
        assert users_see(sim) == before[0]  # it changed nothing
        holder = f"alice (deploy of develop r2, {HOLDER}) {SINCE}, 20s ago; last heartbeat 20s ago"
        assert [line for line in notes.lines if line.startswith("note waiting")] == [
            f"note waiting for the lock of branch develop ({waited}s of 60s): {holder}"
            for waited in (0, 30)
        ]

    meanwhile.append(second)
    assert isinstance(alices(project, "r2", "before:gate:MEANWHILE"), Outcome)
    assert_converged(sim, "r2")


def test_without_a_wait_the_second_deployer_refuses_at_once(
    project: Project, sim: Sim, meanwhile: list[Callable[[], None]]
) -> None:
    alices(project, "r1")

    def second() -> None:
        with pytest.raises(LockError) as refused:
            deploy(project, "r3", wait=0)
        assert str(refused.value) == alive_refusal("deploy of develop r2", "branch develop", 0)

    meanwhile.append(second)
    assert isinstance(alices(project, "r2", "after:render:MEANWHILE"), Outcome)
    assert_converged(sim, "r2")


def test_the_lock_of_a_killed_holder_is_taken_over_once_its_heartbeat_is_stale(
    project: Project, sim: Sim
) -> None:
    alices(project, "r1")
    with pytest.raises(Dead):
        alices(project, "r2", "before:gate:KILL")
    assert locks(sim) == ["gaia_develop_lock"]
    sim.revive()
    sim.advance(STALE_AFTER - 1)
    with pytest.raises(LockError) as refused:
        deploy(project, "r3")
    assert str(refused.value) == alive_refusal(
        "deploy of develop r2", "branch develop", STALE_AFTER - 1
    )
    sim.advance(1)
    notes = Notes()
    outcome = deploy(project, "r3", notes=notes)
    assert isinstance(outcome, Outcome)
    assert notes.lines[1] == (
        "note took over the lock of branch develop from a holder that is gone: alice "
        f"(deploy of develop r2, {HOLDER}) {SINCE}, {STALE_AFTER}s ago; last heartbeat "
        f"{STALE_AFTER}s ago"
    )
    assert_converged(sim, "r3")


def test_a_deployer_whose_lock_was_taken_over_stops_at_its_next_step_changing_nothing(
    project: Project, sim: Sim, meanwhile: list[Callable[[], None]]
) -> None:
    """Paused before its switch for longer than stale_after (a laptop asleep), the first
    deployer's lock is taken over by a second, which deploys r3; the first wakes up."""
    alices(project, "r1")
    after_second: list[tuple[object, ...]] = []

    def second() -> None:
        sim.advance(STALE_AFTER)
        assert isinstance(deploy(project, "r3"), Outcome)
        after_second.append(users_see(sim))

    meanwhile.append(second)
    with pytest.raises(LockLostError) as lost:
        alices(project, "r2", "before:switch:MEANWHILE")
    assert str(lost.value) == (
        "the lock of branch develop was taken over by another command while this deploy of "
        f"develop r2 ran: its heartbeats did not reach the Swarm for {STALE_AFTER}s (the "
        "machine slept, or the connection to local was cut). It stopped here and changes "
        "nothing more; the command that holds the lock now, or the next one, finds what it "
        "left"
    )
    assert users_see(sim) == after_second[0]
    assert_converged(sim, "r3")


def arm(spec: str) -> None:
    """A fault point for the next command (as test_interrupts.run sets it)."""
    interrupts._fired.clear()
    os.environ[interrupts.FAULT_ENV] = spec


def test_a_branch_waits_for_the_shared_lock_only_in_its_shared_steps(
    project: Project, sim: Sim, meanwhile: list[Callable[[], None]]
) -> None:
    """While develop runs its data steps (shared lock held), feature/x gets its own lock,
    runs up to its first shared step and stops there; while develop runs its gate
    (shared lock released), feature/x deploys whole."""
    alices(project, "r1")
    feature = project.config.names("feature/x")

    def blocked() -> None:
        with pytest.raises(LockError) as refused:
            deploy(project, "x1", branch="feature/x")
        assert str(refused.value) == alive_refusal("deploy of develop r2", "the shared stack", 0)
        assert locks(sim) == ["gaia_develop_lock", "gaia_shared_lock"]
        assert not sim.stack(feature.colour_stack("blue"))
        # its branch's secrets are made (the next deploy uses them); then it asked for the
        # shared lock, and freed its own
        assert sim.log[-3:-1] == [
            f"secret create --label swarm-deploy.app=gaia --label swarm-deploy.slug="
            f"{feature.slug} --label swarm-deploy.key=telegram_token "
            f"{sorted(n for n in sim.secrets if 'feature' in n)[-1]} -",
            "config create --label swarm-deploy.lock=gaia_shared_lock "
            "--label swarm-deploy.app=gaia gaia_shared_lock -",
        ]
        assert sim.log[-1].startswith("config rm ")

    def concurrent() -> None:
        assert locks(sim) == ["gaia_develop_lock"]
        assert isinstance(deploy(project, "x1", branch="feature/x"), Outcome)
        assert sim.edge(feature.edge_service).served == "blue"

    meanwhile.append(blocked)
    forget_data(sim)  # so that alice's data jobs run again, under the shared lock
    assert isinstance(alices(project, "r2", "before:databases:MEANWHILE"), Outcome)
    meanwhile.append(concurrent)
    assert isinstance(alices(project, "r3", "before:gate:MEANWHILE"), Outcome)
    assert_converged(sim, "r3")
    assert locks(sim) == []


def forget_data(sim: Sim) -> None:
    """develop's edge records no data job's version: its next deploy runs them all."""
    labels = sim.services[EDGE].labels
    for key in [key for key in labels if key.startswith("swarm-deploy.data.")]:
        del labels[key]


def test_shared_steps_all_skipped_take_no_shared_lock(
    project: Project, sim: Sim, meanwhile: list[Callable[[], None]]
) -> None:
    """feature/x holds the shared lock (its data jobs run) while develop deploys again:
    develop's shared steps are all skipped (its secrets, the shared stack and its data
    jobs are as it would make them), so it neither waits for the lock nor takes it."""
    alices(project, "r1")
    feature = project.config.names("feature/x")
    notes = Notes()
    ran: list[str] = []

    def develop_meanwhile() -> None:
        assert locks(sim) == [f"gaia_{feature.slug}_lock", "gaia_shared_lock"]
        start = len(sim.log)
        assert isinstance(deploy(project, "r2", wait=0, notes=notes), Outcome)
        ran.extend(sim.log[start:])

    meanwhile.append(develop_meanwhile)
    arm("before:databases:MEANWHILE")
    assert isinstance(deploy(project, "x1", branch="feature/x", wait=LOCK_WAIT), Outcome)
    assert_converged(sim, "r2")
    assert [line for line in notes.lines if line.startswith("skipped")] == [
        "skipped nginx",
        *["skipped secrets"] * 4,
        *["skipped shared"] * 3,
        *["skipped databases"] * 2,
        "skipped edge",
        "skipped shared",
    ]
    # no lock asked for but its branch's, no shared stack deployed, no data job run
    assert [line for line in ran if line.startswith("config create")] == [
        "config create --label swarm-deploy.lock=gaia_develop_lock "
        "--label swarm-deploy.app=gaia gaia_develop_lock -"
    ]
    assert not [line for line in ran if "gaia-shared" in line or "gaia-develop-db" in line]
    assert not [line for line in ran if "gaia-develop-redis" in line]


def test_a_shared_stack_changed_before_skipped_shared_steps_stops_the_deploy(
    project: Project, sim: Sim, meanwhile: list[Callable[[], None]]
) -> None:
    """The skips were decided from the shared stack as it ran when alice started; it is
    looked at again where her shared steps stand, lock or no lock."""
    alices(project, "r1")

    def another_command() -> None:
        sim.services["gaia-shared_redis"].id = "created-again"

    meanwhile.append(another_command)
    with pytest.raises(SharedStackError) as stopped:
        alices(project, "r2", "after:render:MEANWHILE")
    assert str(stopped.value) == (
        "the shared stack changed while this deploy ran, before it reached its shared "
        "steps:\n  redis: removed and created again\nnothing of the shared stack was changed "
        "by it; run it again: it is checked against what runs now"
    )
    assert locks(sim) == []
    assert isinstance(alices(project, "r2"), Outcome)  # run again: its Redis job runs
    assert_converged(sim, "r2")


def test_a_shared_stack_changed_before_the_deploy_reached_its_shared_steps_stops_it(
    project: Project, sim: Sim, meanwhile: list[Callable[[], None]]
) -> None:
    """alice's plan was checked against the shared stack as it ran when she started;
    while she built, another command moved the shared Redis to another image."""
    alices(project, "r1")
    changed: list[tuple[object, ...]] = []

    def another_command() -> None:
        sim.services["gaia-shared_redis"].image = "127.0.0.1:5000/testbed/redis:trixie"
        changed.append(users_see(sim))

    meanwhile.append(another_command)
    with pytest.raises(SharedStackError) as stopped:
        alices(project, "r2", "after:render:MEANWHILE")
    assert str(stopped.value) == (
        "the shared stack changed while this deploy ran, before it reached its shared "
        "steps:\n  redis: image 127.0.0.1:5000/testbed/redis:bookworm -> "
        "127.0.0.1:5000/testbed/redis:trixie\nnothing of the shared stack was changed by "
        "it; run it again: it is checked against what runs now"
    )
    assert users_see(sim) == changed[0]  # alice changed nothing
    assert locks(sim) == []
