"""The runner's one-shot jobs, against a fake engine whose job tasks end as scripted."""

from __future__ import annotations

from typing import Any

import pytest

from swarm_deploy import gate
from swarm_deploy.errors import DeployError
from swarm_deploy.plan import RunJob, Step
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
