"""Deploys on the in-memory Swarm (tests/unit/swarm_sim.py) that skip what the facts show
done: the data jobs by the versions the edge records, the shared stack by its services'
definitions; and that run them again when what they depend on changed."""

from __future__ import annotations

import io

from rich.console import Console

from swarm_deploy import usecases
from swarm_deploy.cli_output import ConsoleReporter
from swarm_deploy.pipeline import Project
from swarm_deploy.usecases import Outcome
from tests.unit.swarm_sim import Sim
from tests.unit.test_interrupts import EDGE, FakeTime, assert_converged, project, run, sim

__all__ = ["project", "sim"]

JOBS = ("gaia-develop-db", "gaia-develop-redis")


def deployed(project: Project, sim: Sim, release: str, rollback: bool = False) -> list[str]:
    """What a deploy of `release` (or the rollback to it) ran on the Swarm: its docker
    commands (without `docker`)."""
    start = len(sim.log)
    assert isinstance(run(project, sim, release, rollback=rollback), Outcome)
    assert_converged(sim, release)
    return sim.log[start:]


def jobs_run(ran: list[str]) -> list[str]:
    return [job for job in JOBS for line in ran if line.startswith(f"service create --name {job} ")]


def shared_deployed(ran: list[str]) -> bool:
    return any(line.startswith("stack deploy") and line.endswith(" gaia-shared") for line in ran)


def test_data_jobs_and_the_shared_stack_run_only_when_what_they_ensure_changed(
    project: Project, sim: Sim
) -> None:
    first = deployed(project, sim, "r1")
    assert (jobs_run(first), shared_deployed(first)) == (list(JOBS), True)
    labels = sim.services[EDGE].labels
    # the versions of the jobs that ran, with the IDs of the services they found (the
    # deploy created them): the next deploy skips both
    assert sorted(k for k in labels if k.startswith("swarm-deploy.data.")) == [
        "swarm-deploy.data.postgres",
        "swarm-deploy.data.redis",
    ]
    second = deployed(project, sim, "r2")
    assert (jobs_run(second), shared_deployed(second)) == ([], False)
    # Redis removed and created again as it was (by hand): another service ID, and maybe
    # an empty volume
    sim.services["gaia-shared_redis"].id = "created-again"
    third = deployed(project, sim, "r3")
    assert (jobs_run(third), shared_deployed(third)) == (["gaia-develop-redis"], False)
    fourth = deployed(project, sim, "r4")
    assert (jobs_run(fourth), shared_deployed(fourth)) == ([], False)
    # a rollback is always deployed, but runs nothing needlessly either
    back = deployed(project, sim, "r3", rollback=True)
    assert (jobs_run(back), shared_deployed(back)) == ([], False)


def test_a_deploy_prints_each_skipped_step_without_a_time(project: Project, sim: Sim) -> None:
    deployed(project, sim, "r1")
    out = io.StringIO()
    request = usecases.DeployRequest(project, "develop", "r2")
    usecases.deploy(request, ConsoleReporter(Console(file=out, width=200)), FakeTime().clock())
    lines = out.getvalue().splitlines()
    assert [line for line in lines if line.startswith("skip ")] == [
        f"skip [{n:>2}/28] {phase:<10} {title}  unchanged, skipped"
        for n, phase, title in [
            (9, "nginx", "test the new nginx config of gaia-develop-edge with nginx -t"),
            (10, "secrets", "create secret gaia_develop_pg_password_7d92e9f315"),
            (11, "secrets", "create secret gaia_develop_redis_password_3a89197326"),
            (12, "secrets", "create secret gaia_develop_session_key_6dcd6ef7f8"),
            (13, "secrets", "create secret gaia_develop_telegram_token_e07928a945"),
            (14, "shared", "create secret gaia_shared_postgres_admin_c26cad0e02"),
            (15, "shared", "create secret gaia_shared_redis_admin_21d268e37d"),
            (16, "shared", "ensure the shared stack gaia-shared"),
            (17, "databases", "ensure PostgreSQL role gaia_develop and its databases"),
            (18, "databases", "ensure Redis user gaia_develop for keys gaia:develop:*"),
            (19, "edge", "deploy the edge stack gaia-develop-edge"),
            (28, "shared", "remove shared secrets and configs nothing uses any more"),
        ]
    ]
    # what runs is timed
    assert [line[:12] for line in lines if line.startswith("ok ")] == [
        f"ok   [{n:>2}/28]" for n in (*range(1, 9), *range(20, 28))
    ]
