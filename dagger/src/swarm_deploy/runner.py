"""Performs plan steps in order: the generic actions (commands, waits, jobs, pruning).

edge_actions.py adds the actions inside a branch's nginx (gate, switch), the deployer
(deploy.py) the blue/green state machine on top; destroy uses this as is.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol

from swarm_deploy import commands, facts, gate
from swarm_deploy.engine import ArgvRunner, SwarmApi
from swarm_deploy.errors import CommandError, ConvergeError, DeployError, JobError, TargetError
from swarm_deploy.naming import STACK_NAMESPACE, owner_labels
from swarm_deploy.plan import (
    Action,
    Command,
    FinishDrain,
    HandOffDrain,
    NginxTest,
    Pipe,
    Prune,
    RemoveIfPresent,
    RunJob,
    Step,
    WaitConverged,
    WaitGone,
    lock_runs,
)

_NOT_FOUND = re.compile(r"not found|no such", re.IGNORECASE)


class Reporter(Protocol):
    """Where progress goes: one line per step with its duration, and transient status."""

    def begin(self, number: int, total: int, step: Step) -> None: ...

    def end(self, step: Step, seconds: float, ok: bool) -> None: ...

    def skipped(self, number: int, total: int, step: Step) -> None: ...

    def status(self, text: str) -> None: ...

    def note(self, text: str) -> None: ...


class Runner:
    """Runs steps through the one executor and the Engine API, timing each."""

    def __init__(
        self,
        executor: ArgvRunner,
        swarm: SwarmApi,
        reporter: Reporter,
        clock: gate.Clock = gate.Clock(),
        secret_values: Mapping[str, bytes] | None = None,
        fence: Callable[[], None] = lambda: None,
    ) -> None:
        self.executor = executor
        self.swarm = swarm
        self.reporter = reporter
        self.clock = clock
        self.secret_values = dict(secret_values or {})
        # before each step: raises when a lock this command holds was taken over
        self.fence = fence

    def run(
        self,
        steps: Sequence[Step],
        shared_lock: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        """The steps in order, each run of UNDER_SHARED_LOCK steps inside `shared_lock()`."""
        for shared, run in lock_runs(steps):
            with shared_lock() if shared else nullcontext():
                for number, step in run:
                    self.step(number, len(steps), step)

    def step(self, number: int, total: int, step: Step) -> None:
        """One step, its actions in order, timed; a skipped one is only reported."""
        if step.skipped:
            self.reporter.skipped(number, total, step)
            return
        with self.timed(number, total, step):
            for action in step.actions:
                self.perform(action)

    @contextmanager
    def timed(self, number: int, total: int, step: Step) -> Iterator[None]:
        self.fence()
        self.reporter.begin(number, total, step)
        started = self.clock.now()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.reporter.end(step, self.clock.now() - started, ok)

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            Command: self.command,
            Pipe: lambda a: self.executor.pipe(a.producer, a.consumer),
            WaitConverged: self.wait_converged,
            RunJob: self.run_job,
            NginxTest: self.nginx_test,
            WaitGone: self.wait_gone,
            RemoveIfPresent: self.remove_if_present,
            Prune: self.prune,
            HandOffDrain: self.hand_off_drain,
            FinishDrain: self.finish_drain,
        }

    def perform(self, action: Action) -> None:
        handler = self.handlers().get(type(action))
        if handler is None:
            raise TypeError(f"{type(self).__name__} cannot perform {type(action).__name__}")
        handler(action)

    def command(self, action: Command) -> None:
        stdin = None
        if action.stdin_secret is not None:
            if action.stdin_secret not in self.secret_values:
                raise DeployError(f"secret {action.stdin_secret} has no value: a bug in the plan")
            stdin = self.secret_values[action.stdin_secret]
        result = self.executor.run(action.argv, stdin=stdin, check=False)
        if result.returncode != 0 and not (action.done_if and action.done_if in result.stderr):
            raise CommandError(
                shlex.join(action.argv), result.returncode, result.stderr or result.stdout
            )

    def look_at(self, stack: str) -> gate.Verdict:
        """One look at a stack's services and tasks."""
        services = facts.stack(self.swarm, stack)
        if not services:
            return gate.Verdict(False, None, "no services yet")
        return gate.judge_services(services, facts.tasks_of(self.swarm, services))

    def wait_converged(self, action: WaitConverged) -> None:
        verdict = gate.poll(
            lambda: self.look_at(action.stack),
            action.timeout,
            clock=self.clock,
            on_status=self.reporter.status,
        )
        if verdict.failure:
            raise ConvergeError(f"{action.stack} did not converge: {verdict.failure}")
        if not verdict.done:
            raise ConvergeError(
                f"{action.stack} did not converge within {action.timeout:g}s: {verdict.status}"
            )

    def run_job(self, action: RunJob) -> None:
        """Run a one-shot job to completion; a job whose container the engine could not
        start (gate.TRANSIENT_ENGINE_ERRORS: it never ran) is run once more."""
        for attempt in (1, 2):
            verdict, logs = self._run_job_once(action)
            if verdict.done:
                return
            if not (gate.engine_glitch(verdict.failure) and attempt == 1):
                what = verdict.failure or f"still {verdict.status} after {action.timeout:g}s"
                raise JobError(action.job, what, logs)
            self.reporter.note(f"job {action.job}: the engine could not start it; once more")

    def nginx_test(self, action: NginxTest) -> None:
        """nginx -t in its job; nginx's refusal stops the deploy with nginx's own words."""
        self.command(action.create)
        try:
            self.run_job(action.job)
        except JobError as exc:
            # nothing uses the config yet; one a service does use Swarm refuses to remove
            self.executor.run(commands.config_rm(action.target, action.config), check=False)
            untouched = "the edge was not touched (a running edge keeps the config it has)"
            if not exc.logs:  # nginx never ran: the job's own failure says why
                raise DeployError(
                    f"nginx -t in {action.image} could not test the new nginx config "
                    f"{action.config}: {exc.failure}\n{untouched}.\n"
                    f"next: check that the target can run {action.image} (edge.image in the "
                    "config), then deploy again"
                ) from None
            raise DeployError(
                f"nginx -t in {action.image} refused the new nginx config {action.config}:\n"
                f"{exc.logs}\n{untouched}.\n"
                "next: fix the template nginx/nginx.conf (line numbers are of the rendered "
                f"{action.file}; `swarm-deploy check` runs nginx -t where nginx is installed), "
                "then deploy again"
            ) from None

    def _run_job_once(self, action: RunJob) -> tuple[gate.Verdict, str]:
        """The job's verdict, and its last log lines when it did not complete."""
        self.remove_service_and_wait(action.job)
        self.executor.run(action.argv)
        try:
            job = facts.service(self.swarm, action.job)
            job_id = job.id if job else action.job
            verdict = gate.poll(
                lambda: gate.judge_job(facts.tasks(self.swarm, [job_id])),
                action.timeout,
                clock=self.clock,
                on_status=self.reporter.status,
            )
            logs = "" if verdict.done else self.swarm.service_logs(job_id).strip()
            return verdict, logs
        finally:
            self.swarm.remove_service(action.job)
            self.swarm.remove_containers({"com.docker.swarm.service.name": action.job})

    def remove_service_and_wait(self, name: str) -> None:
        self.swarm.remove_service(name)
        deadline = self.clock.now() + 30
        while self.swarm.service(name) is not None and self.clock.now() < deadline:
            self.clock.sleep(0.5)

    def wait_gone(self, action: WaitGone) -> None:
        def look() -> gate.Verdict:
            left = [
                name
                for stack in action.stacks
                for name in self.swarm.containers({STACK_NAMESPACE: stack})
            ]
            return gate.Verdict(not left, None, f"{len(left)} containers stopping")

        verdict = gate.poll(look, action.timeout, clock=self.clock, on_status=self.reporter.status)
        if not verdict.done:
            raise TargetError(
                f"{', '.join(action.stacks)}: {verdict.status} after {action.timeout:g}s"
            )

    def remove_if_present(self, action: RemoveIfPresent) -> None:
        for name in action.names:
            argv = action.argv(name)
            result = self.executor.run(argv, check=False)
            if result.returncode != 0 and not _NOT_FOUND.search(result.stderr):
                raise CommandError(shlex.join(argv), result.returncode, result.stderr)

    def hand_off_drain(self, action: HandOffDrain) -> None:
        """Start the job that removes the old colour's services once drained, and the
        secrets only they use; a job of that name left by an earlier drain goes first."""
        services = facts.stack(self.swarm, action.stack)
        if services:
            secrets = set().union(*(service.secrets for service in services)) - action.keep
            self.remove_service_and_wait(action.job)
            self.executor.run(action.argv([s.name for s in services], sorted(secrets)))

    def finish_drain(self, action: FinishDrain) -> None:
        """Wait for a handed-off drain's job to remove its colour and itself. A job that
        stopped short, or outlived the wait, is removed first (it cannot remove anything
        after that), then what it was to remove."""

        def look() -> gate.Verdict:
            tasks = facts.job_tasks(self.swarm, action.job)
            if tasks is None:
                return gate.Verdict(True, None, "done")
            ended = gate.judge_job(tasks)
            return gate.Verdict(ended.done or ended.failure is not None, None, "draining")

        gate.poll(
            look,
            action.timeout,
            clock=self.clock,
            on_status=lambda _: self.reporter.status(f"{action.stack} draining"),
        )
        self.remove_service_and_wait(action.job)
        if action.stack and facts.stack(self.swarm, action.stack):
            self.reporter.note(f"the drain job did not remove {action.stack}: removing it now")
            self.command(Command(tuple(commands.stack_rm(action.target, action.stack))))

    def prune(self, action: Prune) -> None:
        labels = owner_labels(action.app, action.scope)
        candidates = [
            commands.secret_rm(action.target, secret.name)
            for secret in facts.secrets(self.swarm, labels)
        ] + [
            commands.config_rm(action.target, config.name)
            for stack in action.stacks
            for config in facts.configs(self.swarm, {STACK_NAMESPACE: stack})
        ]
        removed = []
        for argv in candidates:
            name = argv[-1]
            # Swarm refuses to remove what a service still uses: that refusal is expected
            if name not in action.keep and self.executor.run(argv, check=False).returncode == 0:
                removed.append(name)
        if removed:
            self.reporter.note(f"removed {len(removed)} unused: {', '.join(sorted(removed))}")
