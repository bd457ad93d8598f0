"""status and destroy on the in-memory Swarm (tests/unit/swarm_sim.py): what status
reports of a branch as deploys left it, whole or interrupted, and what destroy removes
(one branch's stacks, secrets and lock; nothing of another branch or the shared stack).
"""

from __future__ import annotations

import pytest

from swarm_deploy import usecases
from swarm_deploy.errors import LockError
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import Step
from swarm_deploy.status import BranchStatus, ServiceHealth
from swarm_deploy.usecases import DeployRequest, DestroyRequest, Outcome, StatusRequest
from tests.unit.swarm_sim import Dead, Sim
from tests.unit.test_interrupts import (
    EDGE,
    FakeTime,
    Notes,
    assert_converged,
    live_names_what_nginx_does_not_serve,
    project,
    run,
    sim,
    time_passes,
)

__all__ = ["project", "sim"]  # the fixtures of the kill-anywhere matrix

DEPLOYED_AT = "2026-11-30T12:00:00Z"  # the sim's manager clock
DEVELOP_SERVICES = {"backend": 2, "bot": 1, "frontend": 1}


def read(project: Project) -> list[BranchStatus]:
    """`swarm-deploy status`: every branch; the shared stack's services all run."""
    found = usecases.status(StatusRequest(project))
    assert found.shared == tuple(
        ServiceHealth(f"gaia-shared_{name}", 1, 1, ("sim",))
        for name in ("postgres", "prometheus", "redis")
    )
    return found.branches


def services(colour: str) -> tuple[ServiceHealth, ...]:
    """The edge's nginx and a colour's services, every task running on the sim's node."""
    return (
        ServiceHealth(EDGE, 1, 1, ("sim",)),
        *(
            ServiceHealth(f"gaia-develop-{colour}_{name}", n, n, ("sim",) * n)
            for name, n in DEVELOP_SERVICES.items()
        ),
    )


def digests(sim: Sim, release: str) -> dict[str, str]:
    return {
        name: sim.digests[f"127.0.0.1:5000/acme/gaia-{name}:{release}"]
        for name in ("backend", "bot", "frontend")
    }


def test_status_reports_the_live_colour_release_images_and_health(
    project: Project, sim: Sim
) -> None:
    assert isinstance(run(project, sim, "r1"), Outcome)
    request = DeployRequest(project, "develop", "r2", actor="alice")
    assert isinstance(usecases.deploy(request, Notes(), FakeTime().clock()), Outcome)
    assert read(project) == [
        BranchStatus(
            branch="develop",
            slug="develop",
            live_colour="green",
            release="r2",
            deployed_at=DEPLOYED_AT,
            deployed_by="alice",
            images=digests(sim, "r2"),
            services=services("green"),
            ports=(),
            problems=(),
        )
    ]


def test_status_lists_what_a_killed_deploy_left_and_a_deploy_repairs_it(
    project: Project, sim: Sim
) -> None:
    """Killed inside the drain: blue still runs; the bot is stopped by hand meanwhile."""
    assert isinstance(run(project, sim, "r1"), Outcome)
    assert isinstance(run(project, sim, "r2", "before:drain:KILL"), Dead)
    sim.revive()
    sim.services["gaia-develop-green_bot"].replicas = 0
    (found,) = read(project)
    assert (found.live_colour, found.release) == ("green", "r2")
    assert found.problems == (
        "gaia-develop-blue runs beside the live colour",
        "singleton bot runs 0 tasks, not 1",
    )
    time_passes(sim)
    assert isinstance(run(project, sim, "r2"), Outcome)
    (repaired,) = read(project)
    assert repaired.problems == ()
    assert repaired.services == services("green")


def test_an_old_colour_its_drain_job_will_remove_is_no_problem(project: Project, sim: Sim) -> None:
    """The deploy returned once live; blue runs until the drain job it handed off removes it."""
    assert isinstance(run(project, sim, "r1"), Outcome)
    sim.drains = "pending"
    assert isinstance(run(project, sim, "r2"), Outcome)
    assert sim.stack("gaia-develop-blue")
    (found,) = read(project)
    assert (found.live_colour, found.release, found.problems) == ("green", "r2", ())


def test_a_drain_job_that_failed_is_a_problem_and_the_next_deploy_repairs_it(
    project: Project, sim: Sim
) -> None:
    assert isinstance(run(project, sim, "r1"), Outcome)
    sim.drains = "failed"
    assert isinstance(run(project, sim, "r2"), Outcome)
    (found,) = read(project)
    assert found.problems == (
        "drain job gaia-develop-drain failed (task.1 failed: task: non-zero exit (1)): it "
        "removes nothing more",
        "gaia-develop-blue runs beside the live colour",
    )
    sim.drains = "done"
    assert isinstance(run(project, sim, "r3"), Outcome)
    (repaired,) = read(project)
    assert repaired.problems == ()


def test_status_believes_what_nginx_serves_over_its_file_and_the_labels(
    project: Project, sim: Sim
) -> None:
    """live/ names green, but nginx serves blue: users get blue."""
    live_names_what_nginx_does_not_serve(project, sim)
    sim.revive()
    (found,) = read(project)
    assert (found.live_colour, found.release) == ("blue", "r1")
    assert found.problems == (
        "live/ names green but nginx serves blue: live/ is made to name what users get",
        "gaia-develop-green runs beside the live colour",
    )


def destroy(project: Project, branch: str, lock_wait: float = 0) -> list[Step]:
    """`swarm-deploy destroy --branch B`: the steps it ran."""
    return usecases.destroy(DestroyRequest(project, branch, lock_wait=lock_wait), Notes()).steps


def test_destroy_removes_one_branch_and_nothing_of_another(project: Project, sim: Sim) -> None:
    config = project.config
    feature = config.names("feature/x")
    assert isinstance(run(project, sim, "r1"), Outcome)
    assert isinstance(
        usecases.deploy(DeployRequest(project, "feature/x", "x1"), Notes(), FakeTime().clock()),
        Outcome,
    )
    develop_before = {n: s for n, s in sim.services.items() if "feature" not in n}
    steps = destroy(project, "feature/x")
    assert [step.title for step in steps] == [
        f"remove {feature.colour_stack('blue')}",
        f"remove {feature.edge_stack}",
        f"remove the network {feature.network}",
        f"remove 4 secrets of {feature.slug}",
    ]
    assert sim.services == develop_before
    assert not [name for name in sim.secrets if feature.slug in name]
    assert not [name for name in sim.configs if name.endswith("_lock")]
    # the branch's users lose it between its colour's removal and its nginx's (as meant);
    # develop's never notice
    assert sim.outages == [
        f"stack rm {feature.colour_stack('blue')}: {feature.edge_service} serves blue, gone"
    ]
    sim.outages.clear()
    assert_converged(sim, "r1")
    # run again: nothing of the branch is left, so nothing to do
    assert destroy(project, "feature/x") == []


def test_destroy_waits_for_the_branchs_lock_like_a_deploy(project: Project, sim: Sim) -> None:
    assert isinstance(run(project, sim, "r1"), Outcome)
    assert isinstance(run(project, sim, "r2", "before:gate:KILL"), Dead)
    sim.revive()
    with pytest.raises(LockError) as refused:
        destroy(project, "develop")
    assert str(refused.value).startswith(
        "another deploy of develop r2 holds the lock of branch develop: "
    )
    assert sim.stack("gaia-develop-blue")
    assert sim.stack("gaia-develop-green")


def test_destroy_waits_on_the_clock_it_is_given_like_a_deploy(project: Project, sim: Sim) -> None:
    """Its lock wait (and its jobs' waits) run on the command's clock, as a deploy's do: a
    60 s --lock-wait passes on FakeTime at once."""
    assert isinstance(run(project, sim, "r1"), Outcome)
    assert isinstance(run(project, sim, "r2", "before:gate:KILL"), Dead)
    sim.revive()
    time = FakeTime()
    request = DestroyRequest(project, "develop", lock_wait=60)
    with pytest.raises(LockError):
        usecases.destroy(request, Notes(), time.clock())
    assert time.t == 60
