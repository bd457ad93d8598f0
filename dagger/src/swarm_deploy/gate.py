"""Has it converged? Is it healthy? Pure judgements of what the engine reports, and the
loops that poll it.

`docker stack deploy` returns before anything runs, and a Swarm rollback can look like
success, so convergence is read from each service's task counts and UpdateStatus, and
any task of the current spec that failed or was rejected ends the wait at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from swarm_deploy.facts import Service, Task

FAILED_STATES = frozenset({"failed", "rejected", "orphaned"})
BAD_UPDATES = frozenset({"paused", "rollback_started", "rollback_paused", "rollback_completed"})
# Engine-side failures that say nothing about the release and that Swarm's next task gets
# past: moby/moby#48783, the secrets tmpfs cannot be remounted read-only ("device or
# resource busy"). One per service is waited out; a second is a failure like any other.
TRANSIENT_ENGINE_ERRORS = ("unable to remount dir as readonly",)
# How often a wait reads the engine (tasks, UpdateStatus): a task's state, and its
# HEALTHCHECK's verdict, count from the moment the engine reports them, not at the next
# whole second. Each look is a few Engine API reads (milliseconds locally, one ssh round
# trip each over ssh://).
POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class Verdict:
    """One look at a stack: done, failed (with why), or still waiting (with where it is)."""

    done: bool
    failure: str | None
    status: str


def describe_task(task: Task) -> str:
    error = task.error or task.message or "no error given"
    slot = f".{task.slot}" if task.slot else ""
    code = f" (exit code {task.exit_code})" if task.exit_code not in (None, 0) else ""
    return f"task{slot} {task.state}: {error}{code}"


def judge_services(services: Sequence[Service], tasks: Sequence[Task]) -> Verdict:
    """Done when every service runs all its tasks and no update is in trouble."""
    waiting: list[str] = []
    for service in sorted(services, key=lambda s: s.name):
        name = service.name
        if service.update_state in BAD_UPDATES:
            message = service.update_message or "no message"
            return Verdict(False, f"{name}: update {service.update_state} ({message})", name)
        failed = [
            task
            for task in tasks
            if task.service_id == service.id
            and task.state in FAILED_STATES
            and task.created_at >= service.updated_at
        ]
        real = [task for task in failed if not engine_glitch(task.error)]
        if real or len(failed) > 1:
            return Verdict(False, f"{name}: {describe_task((real or failed)[0])}", name)
        running, desired = service.running, service.desired
        if service.update_state == "updating" or running < desired:
            states = sorted(
                {
                    t.state
                    for t in tasks
                    if t.service_id == service.id
                    and t.desired_state == "running"
                    and t.state != "running"
                }
            )
            # a task with a HEALTHCHECK stays "starting" until it passes
            shown = f" ({', '.join(states)})" if states else ""
            waiting.append(f"{name} {running}/{desired}{shown}")
    status = ", ".join(waiting) or "all tasks running"
    return Verdict(not waiting, None, status)


def engine_glitch(error: str | None) -> bool:
    """Whether a task's error is one of TRANSIENT_ENGINE_ERRORS (its container never ran)."""
    return any(text in (error or "") for text in TRANSIENT_ENGINE_ERRORS)


def judge_job(tasks: Sequence[Task]) -> Verdict:
    """A one-shot job: done when a task completed; failed when one failed."""
    for task in tasks:
        if task.state == "complete":
            return Verdict(True, None, "complete")
        if task.state in FAILED_STATES:
            return Verdict(False, describe_task(task), task.state)
    states = ", ".join(sorted({t.state for t in tasks})) or "pending"
    return Verdict(False, None, states)


@dataclass(frozen=True)
class Clock:
    """Time, injectable so that waiting loops can be tested without waiting."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def sleep_rest(self, began: float, interval: float) -> None:
        """Sleep until `interval` seconds after `began` (a round's start; none left: no
        sleep), so that rounds start every `interval` however long each one takes."""
        self.sleep(max(0.0, began + interval - self.now()))


def poll(
    look: Callable[[], Verdict],
    timeout: float,
    interval: float = POLL_INTERVAL,
    clock: Clock = Clock(),
    on_status: Callable[[str], None] | None = None,
) -> Verdict:
    """Look until done or failed; at the deadline, the last look (not done) is returned."""
    deadline = clock.now() + timeout
    while True:
        began = clock.now()
        verdict = look()
        if verdict.done or verdict.failure:
            return verdict
        if on_status is not None:
            on_status(verdict.status)
        if clock.now() >= deadline:
            return verdict
        clock.sleep_rest(began, interval)


@dataclass
class HealthCount:
    """Consecutive 200s per path: any other answer starts that path's count again; and
    consecutive other answers, which any 200 starts again."""

    paths: tuple[str, ...]
    needed: int

    def __post_init__(self) -> None:
        self.streak = dict.fromkeys(self.paths, 0)
        self.best = dict.fromkeys(self.paths, 0)
        self.probes = dict.fromkeys(self.paths, 0)
        self.last = dict.fromkeys(self.paths, "")
        self.failing = dict.fromkeys(self.paths, 0)

    def record(self, path: str, status: str) -> None:
        self.last[path] = status
        self.probes[path] += 1
        self.streak[path] = self.streak[path] + 1 if status == "200" else 0
        self.failing[path] = 0 if status == "200" else self.failing[path] + 1
        self.best[path] = max(self.best[path], self.streak[path])

    @property
    def passed(self) -> bool:
        return all(count >= self.needed for count in self.streak.values())

    @property
    def refused(self) -> bool:
        """Whether some path's last `needed` probes all failed."""
        return any(count >= self.needed for count in self.failing.values())

    def status(self) -> str:
        """Per path, in words: `/api/health: 12 probes, best run 2 of 3 consecutive 200s,
        last answer 500` or `/health: ok, its last 12 of 12 probes answered 200`."""
        return "; ".join(self._path_status(path) for path in self.paths)

    def _path_status(self, path: str) -> str:
        probes = self.probes[path]
        if probes == 0:
            return f"{path}: not probed yet"
        if self.streak[path] >= self.needed:
            return f"{path}: ok, its last {self.streak[path]} of {probes} probes answered 200"
        return (
            f"{path}: {probes} probe{'s' if probes > 1 else ''}, best run {self.best[path]} of "
            f"{self.needed} consecutive 200s, last answer {self.last[path]}"
        )
