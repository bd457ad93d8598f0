"""The runner's one-shot jobs, against a fake engine whose job tasks end as scripted."""

from __future__ import annotations

from typing import Any

import pytest

from swarm_deploy import gate, pipeline, usecases
from swarm_deploy.engine import Result
from swarm_deploy.errors import DeployError
from swarm_deploy.plan import NginxTest, RunJob, Step
from swarm_deploy.runner import Runner
from tests.unit.test_gate import GLITCH, task


class FakeEngine:
    """Executor and Swarm in one: each `service create` starts the next scripted task."""

    def __init__(self, outcomes: list[dict[str, Any]]) -> None:
        self.outcomes = outcomes
        self.created = 0

    def run(self, argv: tuple[str, ...], **_: Any) -> None:
        self.created += 1

    def service(self, name: str) -> dict[str, Any] | None:
        return None  # removed at once; the job is then found by its name

    def tasks(self, ids: list[str]) -> list[dict[str, Any]]:
        return [self.outcomes[self.created - 1]]

    def service_logs(self, service_id: str) -> str:
        return "last log line"

    def remove_service(self, name: str) -> None:
        pass

    def remove_containers(self, labels: dict[str, str]) -> None:
        pass


class Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def begin(self, number: int, total: int, step: Step) -> None: ...

    def end(self, step: Step, seconds: float, ok: bool) -> None: ...

    def status(self, text: str) -> None: ...

    def note(self, text: str) -> None:
        self.notes.append(text)


def run_job(outcomes: list[dict[str, Any]]) -> tuple[FakeEngine, Notes]:
    engine, notes = FakeEngine(outcomes), Notes()
    clock = gate.Clock(now=lambda: 0.0, sleep=lambda _: None)
    runner = Runner(engine, engine, notes, clock)  # type: ignore[arg-type]
    runner.run_job(RunJob(("docker", "service", "create"), "gaia-develop-db", 60))
    return engine, notes


def test_a_job_the_engine_could_not_start_runs_once_more() -> None:
    engine, notes = run_job([task("j", "failed", err=GLITCH, code=128), task("j", "complete")])
    assert engine.created == 2
    assert notes.notes == ["job gaia-develop-db: the engine could not start it; once more"]


def test_a_job_that_fails_is_not_run_again() -> None:
    with pytest.raises(DeployError) as failed:
        run_job([task("j", "failed", err="task: non-zero exit (1)", code=1), task("j", "complete")])
    assert str(failed.value) == (
        "job gaia-develop-db failed: task.1 failed: task: non-zero exit (1) (exit code 1)\n"
        "last log line"
    )


def test_a_second_glitch_is_a_failure() -> None:
    glitch = task("j", "failed", err=GLITCH, code=128)
    with pytest.raises(DeployError, match="unable to remount dir as readonly"):
        run_job([glitch, glitch])


NGINX_REFUSAL = (
    'nginx: [emerg] unknown directive "bogus" in /etc/nginx/nginx.conf:12\n'
    "nginx: configuration file /etc/nginx/nginx.conf test failed"
)


class Docker(FakeEngine):
    """Every argv recorded; a `service create` starts the next scripted job task."""

    def __init__(self, outcomes: list[dict[str, Any]], logs: str) -> None:
        super().__init__(outcomes)
        self.argvs: list[tuple[str, ...]] = []
        self.logs = logs

    def run(self, argv: tuple[str, ...], **_: Any) -> Result:  # type: ignore[override]
        self.argvs.append(tuple(argv))
        if argv[1:3] == ("service", "create"):
            self.created += 1
        return Result("", "", 0)

    def service_logs(self, service_id: str) -> str:
        return self.logs


def nginx_test(
    project: pipeline.Project, outcome: dict[str, Any], logs: str = NGINX_REFUSAL
) -> tuple[Docker, NginxTest, DeployError | None]:
    """The plan's nginx test, run against a job that ends as `outcome`."""
    the_plan = usecases.plan(
        usecases.PlanRequest(project, "develop", "r1", environ={}, host="local")
    )
    (test,) = [a for s in the_plan.steps for a in s.actions if isinstance(a, NginxTest)]
    engine = Docker([outcome], logs)
    clock = gate.Clock(now=lambda: 0.0, sleep=lambda _: None)
    try:
        Runner(engine, engine, Notes(), clock).perform(test)  # type: ignore[arg-type]
    except DeployError as exc:
        return engine, test, exc
    return engine, test, None


def test_a_config_nginx_accepts_passes_and_stays_for_the_edge(project: pipeline.Project) -> None:
    engine, test, error = nginx_test(project, task("j", "complete"))
    assert error is None
    assert engine.argvs == [test.create.argv, test.job.argv]


def test_a_config_nginx_refuses_stops_the_deploy_with_nginx_s_words(
    project: pipeline.Project,
) -> None:
    engine, test, error = nginx_test(
        project, task("j", "failed", err="task: non-zero exit (1)", code=1)
    )
    assert str(error) == (
        f"nginx -t in nginx:1.27.2-bookworm refused the new nginx config {test.config}:\n"
        f"{NGINX_REFUSAL}\n"
        "the edge was not touched (a running edge keeps the config it has).\n"
        "next: fix the template nginx/nginx.conf (line numbers are of the rendered "
        ".swarm-deploy/develop/nginx/nginx.conf; `swarm-deploy check` runs nginx -t where "
        "nginx is installed), then deploy again"
    )
    # the config made for the test goes again: nothing is left of the attempt
    assert engine.argvs == [
        test.create.argv,
        test.job.argv,
        ("docker", "config", "rm", test.config),
    ]


def test_an_edge_image_that_cannot_run_is_not_blamed_on_the_config(
    project: pipeline.Project,
) -> None:
    rejected = task("j", "rejected", err="No such image: nginx:1.27.2-bookworm")
    engine, test, error = nginx_test(project, rejected, logs="")
    assert str(error) == (
        f"nginx -t in nginx:1.27.2-bookworm could not test the new nginx config {test.config}: "
        "task.1 rejected: No such image: nginx:1.27.2-bookworm\n"
        "the edge was not touched (a running edge keeps the config it has).\n"
        "next: check that the target can run nginx:1.27.2-bookworm (edge.image in the config), "
        "then deploy again"
    )
    assert engine.argvs[-1] == ("docker", "config", "rm", test.config)
