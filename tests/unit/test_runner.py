"""The runner's one-shot jobs, on the in-memory Swarm, whose job tasks end as scripted."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import pytest

from swarm_deploy import gate, pipeline, usecases
from swarm_deploy.engine import Json
from swarm_deploy.errors import DeployError
from swarm_deploy.plan import Command, NginxTest, Phase, RunJob, Step
from swarm_deploy.runner import Runner
from tests.unit.swarm_sim import Sim, SimExecutor, SimSwarm
from tests.unit.test_gate import GLITCH


def ended(state: str, err: str = "", code: int | None = None) -> Json:
    """A job task's Status, as the Engine reports it."""
    return {"State": state, "Err": err, "ContainerStatus": {"ExitCode": code}}


def created(sim: Sim) -> int:
    return sum(line.startswith("service create") for line in sim.log)


class Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def begin(self, number: int, total: int, step: Step) -> None: ...

    def end(self, step: Step, seconds: float, ok: bool) -> None: ...

    def skipped(self, number: int, total: int, step: Step) -> None: ...

    def status(self, text: str) -> None: ...

    def note(self, text: str) -> None:
        self.notes.append(text)


def run_job(outcomes: list[Json]) -> tuple[Sim, Notes]:
    sim, notes = Sim(jobs=outcomes, job_logs="last log line"), Notes()
    clock = gate.Clock(now=lambda: 0.0, sleep=lambda _: None)
    runner = Runner(SimExecutor(sim, Path()), SimSwarm(sim, "local"), notes, clock)
    argv = ("docker", "service", "create", "--name", "gaia-develop-db", "postgres:17")
    runner.run_job(RunJob(argv, "gaia-develop-db", 60))
    return sim, notes


def test_a_job_the_engine_could_not_start_runs_once_more() -> None:
    sim, notes = run_job([ended("failed", err=GLITCH, code=128), ended("complete")])
    assert created(sim) == 2
    assert notes.notes == ["job gaia-develop-db: the engine could not start it; once more"]


def test_a_job_that_fails_is_not_run_again() -> None:
    with pytest.raises(DeployError) as failed:
        run_job([ended("failed", err="task: non-zero exit (1)", code=1), ended("complete")])
    assert str(failed.value) == (
        "job gaia-develop-db failed: task.1 failed: task: non-zero exit (1) (exit code 1)\n"
        "last log line"
    )


def test_a_second_glitch_is_a_failure() -> None:
    glitch = ended("failed", err=GLITCH, code=128)
    with pytest.raises(DeployError, match="unable to remount dir as readonly"):
        run_job([glitch, glitch])


NGINX_REFUSAL = (
    'nginx: [emerg] unknown directive "bogus" in /etc/nginx/nginx.conf:12\n'
    "nginx: configuration file /etc/nginx/nginx.conf test failed"
)


def nginx_test(
    project: pipeline.Project, outcome: Json, logs: str = NGINX_REFUSAL
) -> tuple[list[str], NginxTest, DeployError | None]:
    """The plan's nginx test, run against a job that ends as `outcome`; the docker argv
    it ran (without `docker`)."""
    the_plan = usecases.plan(
        usecases.PlanRequest(project, "develop", "r1", environ={}, host="local")
    )
    (test,) = [a for s in the_plan.steps for a in s.actions if isinstance(a, NginxTest)]
    sim = Sim(jobs=[outcome], job_logs=logs)
    clock = gate.Clock(now=lambda: 0.0, sleep=lambda _: None)
    try:
        Runner(SimExecutor(sim, Path()), SimSwarm(sim, "local"), Notes(), clock).perform(test)
    except DeployError as exc:
        return sim.log, test, exc
    return sim.log, test, None


def ran(*argvs: Sequence[str]) -> list[str]:
    return [shlex.join(argv[1:]) for argv in argvs]


def test_a_config_nginx_accepts_passes_and_stays_for_the_edge(project: pipeline.Project) -> None:
    log, test, error = nginx_test(project, ended("complete"))
    assert error is None
    assert log == ran(test.create.argv, test.job.argv)


def test_a_config_nginx_refuses_stops_the_deploy_with_nginx_s_words(
    project: pipeline.Project,
) -> None:
    log, test, error = nginx_test(project, ended("failed", err="task: non-zero exit (1)", code=1))
    assert str(error) == (
        f"nginx -t in nginx:1.27.2-bookworm refused the new nginx config {test.config}:\n"
        f"{NGINX_REFUSAL}\n"
        "the edge was not touched (a running edge keeps the config it has).\n"
        "next: fix the template nginx/nginx.conf (line numbers are of the rendered "
        ".swarm-deploy/develop/nginx/nginx.conf; `swarm-deploy check` runs nginx -t where "
        "nginx is installed), then deploy again"
    )
    # the config made for the test goes again: nothing is left of the attempt
    assert log == ran(test.create.argv, test.job.argv, ("docker", "config", "rm", test.config))


def test_an_edge_image_that_cannot_run_is_not_blamed_on_the_config(
    project: pipeline.Project,
) -> None:
    rejected = ended("rejected", err="No such image: nginx:1.27.2-bookworm")
    log, test, error = nginx_test(project, rejected, logs="")
    assert str(error) == (
        f"nginx -t in nginx:1.27.2-bookworm could not test the new nginx config {test.config}: "
        "task.1 rejected: No such image: nginx:1.27.2-bookworm\n"
        "the edge was not touched (a running edge keeps the config it has).\n"
        "next: check that the target can run nginx:1.27.2-bookworm (edge.image in the config), "
        "then deploy again"
    )
    assert log[-1] == f"config rm {test.config}"


class Lines:
    """What a reporter hears, one line per call."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def begin(self, number: int, total: int, step: Step) -> None:
        self.lines.append(f"begin {number}/{total} {step.title}")

    def end(self, step: Step, seconds: float, ok: bool) -> None:
        self.lines.append(f"end {step.title}")

    def skipped(self, number: int, total: int, step: Step) -> None:
        self.lines.append(f"skipped {number}/{total} {step.title}: {step.skipped}")

    def status(self, text: str) -> None: ...

    def note(self, text: str) -> None: ...


def test_a_skipped_step_is_reported_not_run_nor_fenced() -> None:
    """Not timed, and no heartbeat of the lock (the fence) spent on it."""
    sim, lines, fenced = Sim(), Lines(), []
    clock = gate.Clock(now=lambda: 0.0, sleep=lambda _: None)
    runner = Runner(
        SimExecutor(sim, Path()),
        SimSwarm(sim, "local"),
        lines,
        clock,
        fence=lambda: fenced.append(1),
    )
    steps = [
        Step(Phase.NETWORK, "remove n1", (Command(("docker", "network", "rm", "n1")),)),
        Step(Phase.NETWORK, "remove n2", (Command(("docker", "network", "rm", "n2")),)).skip(
            "n2 is gone"
        ),
    ]
    runner.run(steps)
    assert lines.lines == [
        "begin 1/2 remove n1",
        "end remove n1",
        "skipped 2/2 remove n2: n2 is gone",
    ]
    assert (sim.log, len(fenced)) == (["network rm n1"], 1)
    assert steps[1].actions == ()
