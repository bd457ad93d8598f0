"""Runs a plan on the target: the blue/green state machine.

The plan decides; this module performs its actions, in order, through the one
executor (docker argv) and the Engine API (reads); those inside the branch's nginx (the
gate's loop, the switch) are edge_actions.py's. When a deploy stops (an error, or a
first INT, TERM or HUP), what nginx serves decides what happened: if the switch has not
taken effect, the new colour is removed and what was live stays live; if it has, the
switch is recorded and the singletons moved. The error names the check that failed,
what it last saw, and the command to run next.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from swarm_deploy import commands, facts, gate, interrupts, stack_secrets
from swarm_deploy.claims import changed_since
from swarm_deploy.config import Branch, Config
from swarm_deploy.edge import edge_tasks, live, probe_path, read_nginx
from swarm_deploy.edge_actions import EdgeRunner
from swarm_deploy.engine import ArgvRunner, SwarmApi
from swarm_deploy.errors import (
    DeployError,
    LockLostError,
    SharedStackError,
    SwarmDeployError,
    TargetError,
)
from swarm_deploy.lock import Lease, SwarmLock
from swarm_deploy.naming import DRAIN_JOB, label
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import (
    EnsureData,
    Facts,
    HealthGate,
    Migrate,
    Phase,
    PinDigests,
    Plan,
    Record,
    RenderFiles,
    RewriteLive,
    RunJob,
    Step,
    Switch,
    lock_runs,
)
from swarm_deploy.record import data_version
from swarm_deploy.render import Release, write
from swarm_deploy.runner import Reporter


def read_facts(
    swarm: SwarmApi, executor: ArgvRunner, config: Config, branch: Branch
) -> tuple[Facts, list[str]]:
    """What the target holds for this branch, and notes on anything reconciled."""
    swarm.require_manager()
    observed, truth = live(swarm, executor, config, branch.names)
    secrets = facts.secrets(swarm, {label("app"): config.app})
    edges = facts.edges(swarm, config.app)
    found = Facts(
        read=True,
        live_colour=truth.live,
        state=truth.state,
        existing_secrets=frozenset(s.name for s in secrets),
        nodes=len(facts.nodes(swarm)),
        stacks=observed.stacks,
        relabel=truth.relabel,
        refile=truth.refile,
        others=tuple(
            facts.other_branch(config, edge)
            for edge in edges
            if edge.name != branch.names.edge_service
        ),
        # each edge brought its host to Traefik, which ordered its certificate then
        edges_created={edge.name: edge.created_at for edge in edges},
        shared_stack=facts.running_shared(swarm, config),
        drain=facts.drain_of(swarm, branch.names.job(DRAIN_JOB)),
    )
    return found, list(truth.notes)


class Deployer(EdgeRunner):
    """Runs a deploy plan; when it fails before the switch, removes the new colour."""

    def __init__(
        self,
        project: Project,
        plan: Plan,
        secrets: stack_secrets.BranchSecrets,
        executor: ArgvRunner,
        swarm: SwarmApi,
        reporter: Reporter,
        shared_lock: SwarmLock,
        lock_wait: float,
        lease: Lease | None = None,
        clock: gate.Clock = gate.Clock(),
    ) -> None:
        values = {s.key: s.value.reveal() for s in secrets.all() if s.value is not None}
        super().__init__(executor, swarm, reporter, clock, values, self._still_locked)
        self.project = project
        self.plan = plan
        self.secrets = secrets
        self.release: Release = plan.release
        self.shared_lock = shared_lock
        self.lock_wait = lock_wait
        # the branch's lock, and the shared one while it is held
        self.leases = [lease] if lease is not None else []
        self.shared_checked = False
        # by kind, what each data job this deploy ran ensured (record.data_version)
        self.ensured: dict[str, str] = {}

    @property
    def branch(self) -> Branch:
        return self.plan.branch

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            **super().handlers(),
            PinDigests: self._pin_digests,
            RenderFiles: self._render_files,
            HealthGate: lambda a: self.health_gate(a, self.branch.names.colour_stack(a.colour)),
            Switch: self.switch,
            RewriteLive: self.rewrite_live,
            Record: self._record,
            Migrate: self._migrate,
            EnsureData: self._ensure_data,
        }

    def deploy(self) -> None:
        begun: set[Phase] = set()
        done: set[Phase] = set()
        steps = self.plan.steps
        try:
            for shared, run in lock_runs(steps):
                with self._holding_shared_lock(run) if shared else nullcontext():
                    for number, step in run:
                        interrupts.point(f"before:{step.phase}")
                        begun.add(step.phase)
                        self.step(number, len(steps), step)
                        done.add(step.phase)
                        interrupts.point(f"after:{step.phase}")
        except (SwarmDeployError, KeyboardInterrupt) as exc:
            self._stopped(exc, begun, done)

    def _stopped(
        self, exc: SwarmDeployError | KeyboardInterrupt, begun: set[Phase], done: set[Phase]
    ) -> None:
        """The deploy stopped (an error, or a first signal): what nginx serves decides
        whether the switch happened. If it did, the steps that make it whole (record,
        singletons) are finished; if not, the new colour is removed. Raises DeployError
        saying which, and what is left for the next deploy."""
        if isinstance(exc, LockLostError):
            raise exc  # another command holds the branch now, and its new colour too
        reason = str(exc) if isinstance(exc, SwarmDeployError) else interrupted(exc)
        if Phase.COLOUR not in begun:
            if isinstance(exc, SwarmDeployError):
                raise exc
            raise DeployError(
                f"{reason} before the new colour was deployed; "
                f"{self._kept(self.plan.old_colour)}; nothing else is left to repair"
            ) from None
        try:
            try:
                served = self._served()
                known = True
            except TargetError:
                served, known = set(), False
            # tasks left on different colours (a switch stopped between two) are all put
            # back on the old one with the rest of the undo
            if served == {self.plan.new_colour}:
                self._finish(reason, exc, done)
            if not known and Phase.SWITCH in begun:
                raise DeployError(
                    f"{reason}\ncould not tell which colour nginx serves, so neither colour "
                    "was removed.\nnext: once the branch's nginx answers, "
                    f"`swarm-deploy deploy --branch {self.branch.name}` repairs the rest"
                ) from exc
            self._undo(reason, exc)
        except interrupts.Aborted as aborted:
            raise interrupts.Aborted(
                f"{aborted}; the branch may be left half-switched: run `swarm-deploy deploy "
                f"--branch {self.branch.name}` to repair it"
            ) from None

    def _finish(self, reason: str, cause: BaseException, done: set[Phase]) -> None:
        """After the switch: record it and move the singletons, if not done yet."""
        names = self.branch.names
        old = self.plan.old_colour
        new, version = names.colour_stack(self.plan.new_colour), self.release.version
        live = f"{new} is live with release {version}"
        try:
            for step in self.plan.steps:
                if step.phase in (Phase.RECORD, Phase.SINGLETONS) and step.phase not in done:
                    for action in step.actions:
                        self.perform(action)
        except SwarmDeployError as failed:
            # the repairs a deploy plans from what nginx serves finish both (truth.py)
            running = "" if old is None else f"; {names.colour_stack(old)} still runs"
            why = reason if str(failed) == reason else f"{reason}\n{failed}"
            raise DeployError(
                f"{why}\n"
                f"the switch had happened: {live}, but recording it and moving the singletons "
                f"did not finish{running}.\n"
                f"next: `swarm-deploy deploy --branch {self.branch.name}` repairs the record "
                "and the singletons"
            ) from failed
        left = (
            f"; {names.colour_stack(old)} still runs and the next deploy removes it"
            if old is not None and Phase.DRAIN not in done
            else ""
        )
        raise DeployError(
            f"{reason}\nthe switch had happened: {live}, recorded{left}.\n"
            f"next: `swarm-deploy status --branch {self.branch.name}` shows what runs"
        ) from cause

    def _undo(self, reason: str, cause: BaseException) -> None:
        """Before the switch took effect: nginx's live/ names the old colour again, and the
        new colour is removed."""
        names = self.branch.names
        new_stack = names.colour_stack(self.plan.new_colour)
        old = self.plan.old_colour
        try:
            edges = edge_tasks(self.swarm, names.edge_service)
        except TargetError:
            edges = []
        failed = [
            f"{edge.name}: {failure}"
            for edge in edges
            if read_nginx(self.executor, edge, None).named != old
            and (failure := self.write_live(edge, old)) is not None
        ]
        if failed:
            # a task that may still serve the new colour must keep it
            listed = "\n".join(failed)
            back = names.colour_stack(old) if old is not None else "no colour"
            raise DeployError(
                f"{reason}\ncould not put nginx back on {back}:\n{listed}\n"
                "neither colour was removed.\nnext: once the branch's nginx answers, "
                f"`swarm-deploy deploy --branch {self.branch.name}` repairs the rest"
            ) from cause
        self.reporter.note(f"removing {new_stack}: the deploy stopped before the switch")
        self.executor.run(commands.stack_rm(self.plan.target, new_stack), check=False)
        raise DeployError(
            f"{reason}\nrolled back: removed {new_stack}; {self._kept(old)}.\n"
            f"next: fix the release, then `swarm-deploy deploy --branch {self.branch.name}`; "
            f"`swarm-deploy status --branch {self.branch.name}` shows what runs"
        ) from cause

    def _kept(self, live: str | None) -> str:
        if live is None:
            return "no colour was live: the branch answers 503 (maintenance)"
        return f"{self.branch.names.colour_stack(live)} stays live"

    def _served(self) -> set[str | None]:
        """The colours the nginx tasks serve now (what live/ names, when no service is
        routed to ask); TargetError when one cannot say."""
        path = probe_path(self.project.config)
        edges = edge_tasks(self.swarm, self.branch.names.edge_service)
        read = [read_nginx(self.executor, edge, path) for edge in edges]
        return {replica.served if path is not None else replica.named for replica in read}

    def _still_locked(self) -> None:
        for lease in self.leases:
            lease.check()

    @contextmanager
    def _holding_shared_lock(self, run: Sequence[tuple[int, Step]]) -> Iterator[None]:
        """While steps change or use what every branch shares, other commands wait for
        them. A run of steps all skipped (what each ensures is so already) changes and uses
        nothing: it takes no lock, and the look below is the moment the facts they were
        skipped by are confirmed, as if they had run then."""
        if all(step.skipped for _, step in run):
            self._check_shared()
            yield
            return
        with self.shared_lock.held(self.lock_wait, self.reporter) as lease:
            self._check_shared()
            self.leases.append(lease)
            try:
                yield
            finally:
                self.leases.remove(lease)

    def _check_shared(self) -> None:
        """The first time, what the plan was checked against (claims) and skipped by must
        still be what runs: another deploy may have changed the shared stack meanwhile."""
        if not self.shared_checked and self.plan.facts.read:
            changed = changed_since(
                self.plan.facts.shared_stack,
                facts.running_shared(self.swarm, self.project.config),
            )
            if changed:
                listed = "\n".join(f"  {line}" for line in changed)
                raise SharedStackError(
                    f"the shared stack changed while this deploy ran, before it reached "
                    f"its shared steps:\n{listed}\nnothing of the shared stack was changed "
                    f"by it; run it again: it is checked against what runs now"
                )
        self.shared_checked = True

    def _migrate(self, action: Migrate) -> None:
        self.run_job(RunJob(tuple(action.argv(self.release)), action.job, action.timeout))

    def _record(self, action: Record) -> None:
        self.executor.run(action.argv(self.release, self.ensured))

    def _ensure_data(self, action: EnsureData) -> None:
        """The job, then what it ensured, against the service it found (read under the
        shared lock, which every change of the shared stack holds)."""
        service = facts.service(self.swarm, action.service)
        self.run_job(action.job)
        if service is not None:
            self.ensured[action.kind] = data_version(action.inputs, service.id)

    def _pin_digests(self, action: PinDigests) -> None:
        pinned = dict(self.release.images)
        for name, ref in self.release.images.items():
            output = self.executor.run(commands.repo_digests(ref)).stdout
            repository = ref.rsplit(":", 1)[0]
            digests = [d for d in json.loads(output or "[]") if d.startswith(f"{repository}@")]
            if not digests:
                raise TargetError(
                    f"{ref} has no digest from {repository} after the push; check the registry"
                )
            pinned[name] = digests[0]
        self.release = replace(self.release, images=pinned)

    def _render_files(self, action: RenderFiles) -> None:
        rendered = self.project.render(
            self.branch, self.release, self.secrets, self.plan.old_colour, self.plan.facts.state
        )
        directory = self.project.config.root / action.directory
        clean_workdir(directory)
        write(rendered.files, directory)


def interrupted(exc: BaseException) -> str:
    name = exc.name if isinstance(exc, interrupts.Interrupted) else "INT"
    return f"interrupted (SIG{name})"


def clean_workdir(directory: Path) -> None:
    """Rendered files are rewritten on each deploy: nothing of an older render stays."""
    if directory.exists():
        for path in sorted(directory.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
