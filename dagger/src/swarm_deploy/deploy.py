"""Runs a plan on the target: the blue/green state machine.

The plan decides; this module performs its actions, in order, through the one
executor (docker argv) and the Engine API (reads). Before the switch, any failure
removes the new colour and leaves what was live serving; the error names the check
that failed, what it last saw, and the command to run next.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from swarm_deploy import commands, gate, pipeline, stack_secrets
from swarm_deploy.claims import OtherBranch, RunningShared, changed_since
from swarm_deploy.config import Branch, Config
from swarm_deploy.engine import Executor, Json, Swarm
from swarm_deploy.errors import (
    BranchError,
    DeployError,
    GateError,
    LockLostError,
    SharedStackError,
    SwarmDeployError,
    TargetError,
)
from swarm_deploy.lock import Lease, SwarmLock
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import (
    LABEL,
    Facts,
    HealthGate,
    Migrate,
    PinDigests,
    Plan,
    Record,
    RenderFiles,
    RunJob,
    Switch,
    lock_runs,
)
from swarm_deploy.render import Release, write
from swarm_deploy.runner import Reporter, Runner

LIVE_FILE = "/etc/nginx/live/colour.conf"
PREVIEW = "http://127.0.0.1:8081"
PUBLIC = "http://127.0.0.1"
COLOUR_HEADER = "X-Swarm-Deploy-Colour"
STATIC_LABELS = frozenset(f"{LABEL}.{key}" for key in ("app", "branch", "slug", "service"))
_COLOUR_LINE = re.compile(r'set \$colour "(blue|green)";')


def state_of(edge: Json | None) -> dict[str, str]:
    """The labels a deploy recorded on the edge service."""
    labels: dict[str, str] = ((edge or {}).get("Spec") or {}).get("Labels") or {}
    return {
        key: value
        for key, value in labels.items()
        if key.startswith(f"{LABEL}.") and key not in STATIC_LABELS
    }


@dataclass(frozen=True)
class EdgeTask:
    """The running nginx of a branch: its container, and the engine that can exec in it."""

    target: str
    container: str


def edge_task(swarm: Swarm, edge_service: str) -> EdgeTask:
    """Where the branch's nginx runs. `docker exec` reaches only containers of the engine
    it talks to, so an edge on another node is reached over ssh to that node's address,
    with the user and port of the target."""
    service = swarm.service(edge_service)
    if service is None:
        raise TargetError(f"{edge_service} does not exist on {swarm.target}")
    running = [
        task
        for task in swarm.tasks([service["ID"]])
        if task.get("Status", {}).get("State") == "running"
        and task.get("DesiredState") == "running"
    ]
    if not running:
        raise TargetError(f"{edge_service} has no running task on {swarm.target}")
    task = running[0]
    container: str = task["Status"]["ContainerStatus"]["ContainerID"]
    if task.get("NodeID") == swarm.info.get("Swarm", {}).get("NodeID"):
        return EdgeTask(swarm.target, container)
    return EdgeTask(node_target(swarm, task["NodeID"]), container)


def node_target(swarm: Swarm, node_id: str) -> str:
    """ssh://user@<node address>:port, from the target's user and port."""
    node = swarm.node(node_id)
    address = node["Status"]["Addr"]
    hostname = node["Description"]["Hostname"]
    if swarm.target == commands.LOCAL:
        raise TargetError(
            f"the branch's nginx runs on node {hostname} ({address}), which a local target "
            "cannot reach: deploy with --host ssh://user@manager, with ssh access to every "
            "edge node, or pin the edges to the manager (swarm/edge_node_label)"
        )
    parts = urlsplit(swarm.target)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"ssh://{user}{address}{port}"


def live_colour_in_nginx(executor: Executor, edge: EdgeTask) -> str | None:
    result = executor.run(
        commands.exec_in(edge.target, edge.container, "cat", LIVE_FILE), check=False
    )
    found = _COLOUR_LINE.search(result.stdout) if result.returncode == 0 else None
    return found.group(1) if found else None


def read_facts(
    swarm: Swarm, executor: Executor, config: Config, branch: Branch
) -> tuple[Facts, list[str]]:
    """What the target holds for this branch, and notes on anything reconciled."""
    swarm.require_manager()
    notes = []
    edge = swarm.service(branch.names.edge_service)
    state = state_of(edge)
    live = state.get(f"{LABEL}.live-colour")
    if edge is not None:
        try:
            in_nginx = live_colour_in_nginx(executor, edge_task(swarm, branch.names.edge_service))
        except TargetError as exc:
            notes.append(f"could not read nginx's live colour ({exc}); using the labels")
        else:
            if in_nginx != live:
                notes.append(
                    f"nginx serves {in_nginx or 'no colour'} but the labels say "
                    f"{live or 'none'}: nginx is what users see, so {in_nginx or 'none'} is live"
                )
                live = in_nginx
    if live is not None and not swarm.stack_services(branch.names.colour_stack(live)):
        notes.append(f"{branch.names.colour_stack(live)} is gone: no colour is live")
        live = None
    secrets = swarm.secrets({f"{LABEL}.app": config.app})
    edges = swarm.services({f"{LABEL}.app": config.app, f"{LABEL}.service": "nginx"})
    facts = Facts(
        read=True,
        live_colour=live,
        state=state,
        existing_secrets=frozenset(s["Spec"]["Name"] for s in secrets),
        nodes=len(swarm.nodes()),
        others=tuple(
            other_branch(config, edge)
            for edge in edges
            if edge["Spec"]["Name"] != branch.names.edge_service
        ),
        shared_stack=running_shared(swarm, config),
    )
    return facts, notes


def other_branch(config: Config, edge: Json) -> OtherBranch:
    """Another branch, from its edge service's labels; one deployed before its host was
    recorded gets the host this config's rules give it."""
    labels: dict[str, str] = edge["Spec"].get("Labels") or {}
    name = labels.get(f"{LABEL}.branch", "")
    host = labels.get(f"{LABEL}.host")
    if host is None:
        try:
            host = config.branch(name).host
        except BranchError:
            host = None
    uses = labels.get(f"{LABEL}.uses")
    return OtherBranch(
        name, host, None if uses is None else frozenset(filter(None, uses.split(",")))
    )


def running_shared(swarm: Swarm, config: Config) -> dict[str, RunningShared]:
    """The shared stack's services by kind, as they run."""
    prefix = f"{config.shared_names.stack}_"
    running = {}
    for service in swarm.stack_services(config.shared_names.stack):
        spec = service["Spec"]
        container = spec["TaskTemplate"]["ContainerSpec"]
        image = container["Image"].split("@", 1)[0]
        definition = (spec.get("Labels") or {}).get(f"{LABEL}.definition")
        mounted = frozenset(s["SecretName"] for s in container.get("Secrets") or [])
        running[spec["Name"].removeprefix(prefix)] = RunningShared(definition, image, mounted)
    return running


class Deployer(Runner):
    """Runs a deploy plan; when it fails before the switch, removes the new colour."""

    def __init__(
        self,
        project: Project,
        plan: Plan,
        secrets: stack_secrets.BranchSecrets,
        executor: Executor,
        swarm: Swarm,
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

    @property
    def branch(self) -> Branch:
        return self.plan.branch

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            **super().handlers(),
            PinDigests: self._pin_digests,
            RenderFiles: self._render_files,
            HealthGate: self._health_gate,
            Switch: self._switch,
            Record: self._record,
            Migrate: self._migrate,
        }

    def deploy(self) -> None:
        new_stack = self.branch.names.colour_stack(self.plan.new_colour)
        new_colour_deployed = switched = False
        steps = self.plan.steps
        try:
            for shared, run in lock_runs(steps):
                with self._holding_shared_lock() if shared else nullcontext():
                    for number, step in run:
                        new_colour_deployed = new_colour_deployed or step.phase == "colour"
                        with self.timed(number, len(steps), step):
                            for action in step.actions:
                                self.perform(action)
                        switched = switched or step.phase == "switch"
        except (SwarmDeployError, KeyboardInterrupt) as exc:
            # a lost lock is another command's now, and so is the new colour
            if not new_colour_deployed or switched or isinstance(exc, LockLostError):
                raise
            self.reporter.note(f"removing {new_stack}: the deploy stopped before the switch")
            self.executor.run(commands.stack_rm(self.plan.target, new_stack), check=False)
            live = self.plan.old_colour
            kept = (
                f"{self.branch.names.colour_stack(live)} stays live"
                if live
                else "no colour was live: the branch answers 503 (maintenance)"
            )
            reason = str(exc) if isinstance(exc, SwarmDeployError) else "interrupted"
            raise DeployError(
                f"{reason}\nrolled back: removed {new_stack}; {kept}.\n"
                f"next: fix the release, then `swarm-deploy deploy --branch {self.branch.name}`; "
                f"`swarm-deploy status --branch {self.branch.name}` shows what runs"
            ) from None

    def _still_locked(self) -> None:
        for lease in self.leases:
            lease.check()

    @contextmanager
    def _holding_shared_lock(self) -> Iterator[None]:
        """While steps change or use what every branch shares, other commands wait for
        them. The first time, what the plan was checked against (claims) must still be
        what runs: another deploy may have changed the shared stack meanwhile."""
        with self.shared_lock.held(self.lock_wait, self.reporter) as lease:
            if not self.shared_checked and self.plan.facts.read:
                changed = changed_since(
                    self.plan.facts.shared_stack, running_shared(self.swarm, self.project.config)
                )
                if changed:
                    listed = "\n".join(f"  {line}" for line in changed)
                    raise SharedStackError(
                        f"the shared stack changed while this deploy ran, before it reached "
                        f"its shared steps:\n{listed}\nnothing of the shared stack was changed "
                        f"by it; run it again: it is checked against what runs now"
                    )
            self.shared_checked = True
            self.leases.append(lease)
            try:
                yield
            finally:
                self.leases.remove(lease)

    def _migrate(self, action: Migrate) -> None:
        self.run_job(RunJob(tuple(action.argv(self.release)), action.job, action.timeout))

    def _record(self, action: Record) -> None:
        self.executor.run(action.argv(self.release))

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

    def _exec(self, edge: EdgeTask, *argv: str, stdin: bytes | None = None) -> str:
        result = self.executor.run(
            commands.exec_in(edge.target, edge.container, *argv, stdin=stdin is not None),
            stdin=stdin,
            check=False,
        )
        return result.stdout if result.returncode == 0 else ""

    def _http_status(self, edge: EdgeTask, url: str, colour: str | None = None) -> str:
        header = ["-H", f"{COLOUR_HEADER}: {colour}"] if colour else []
        code = self._exec(
            edge, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
            "--max-time", "5", *header, url,
        )  # fmt: skip
        return code.strip() or "no answer"

    def _health_gate(self, action: HealthGate) -> None:
        """(a) the new colour's tasks run (and are healthy), (b) its health paths answer 200
        N times in a row through nginx; a failed task ends it at once, whenever it fails."""
        stack = self.branch.names.colour_stack(action.colour)
        deadline = self.clock.now() + action.gate.timeout
        verdict = gate.poll(
            lambda: self.look_at(stack),
            action.gate.timeout,
            clock=self.clock,
            on_status=self.reporter.status,
        )
        if verdict.failure:
            raise GateError(f"gate for {action.colour}: {verdict.failure}")
        if not verdict.done:
            raise GateError(
                f"gate for {action.colour}: not every task running and healthy within "
                f"{action.gate.timeout:g}s: {verdict.status}"
            )
        self.sleep(action.gate.start_grace, "start grace")
        count = gate.HealthCount(action.paths, action.gate.consecutive)
        while True:
            verdict = self.look_at(stack)
            if verdict.failure:
                raise GateError(f"gate for {action.colour}: {verdict.failure}")
            edge = edge_task(self.swarm, action.edge_service)
            for path in action.paths:
                count.record(path, self._http_status(edge, PREVIEW + path, action.colour))
            self.reporter.status(count.status())
            if count.passed:
                return
            if self.clock.now() >= deadline:
                raise GateError(
                    f"gate for {action.colour}: no {action.gate.consecutive} consecutive 200s "
                    f"through the preview route within {action.gate.timeout:g}s; "
                    f"last: {count.status()}"
                )
            self.clock.sleep(action.gate.interval)

    def _switch(self, action: Switch) -> None:
        edge = edge_task(self.swarm, action.edge_service)
        previous = self._exec(edge, "cat", LIVE_FILE)
        self._write_live(edge, f'set $colour "{action.colour}";\n')
        try:
            self.executor.run(commands.exec_in(edge.target, edge.container, "nginx", "-t"))
            self.executor.run(
                commands.exec_in(edge.target, edge.container, "nginx", "-s", "reload")
            )
            self._verify_switch(edge, action)
        except SwarmDeployError:
            self.reporter.note("switch failed: putting the previous colour back")
            self._write_live(edge, previous)
            self.executor.run(
                commands.exec_in(edge.target, edge.container, "nginx", "-s", "reload"),
                check=False,
            )
            raise

    def _write_live(self, edge: EdgeTask, content: str) -> None:
        self.executor.run(
            commands.exec_in(edge.target, edge.container, "tee", LIVE_FILE, stdin=True),
            stdin=content.encode(),
        )

    def _verify_switch(self, edge: EdgeTask, action: Switch) -> None:
        """New requests through the public route must reach the new colour."""
        deadline = self.clock.now() + 15
        while True:
            seen = {}
            for path in action.paths:
                headers = self._exec(
                    edge, "curl", "-s", "-o", "/dev/null", "-D", "-", "--max-time", "5",
                    PUBLIC + path,
                )  # fmt: skip
                found = re.search(rf"^{COLOUR_HEADER}: (\S+)", headers, re.I | re.M)
                seen[path] = found.group(1) if found else "no colour header"
            if all(colour == action.colour for colour in seen.values()):
                return
            if self.clock.now() >= deadline:
                shown = ", ".join(f"{p} -> {c}" for p, c in seen.items())
                raise DeployError(
                    f"after the switch to {action.colour}, the public route gave {shown}"
                )
            self.clock.sleep(0.5)


def clean_workdir(directory: Path) -> None:
    """Rendered files are rewritten on each deploy: nothing of an older render stays."""
    if directory.exists():
        for path in sorted(directory.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()


def deployed_at(swarm: Swarm) -> str:
    """Now, on the manager's clock: what `status` and `destroy --stale` measure ages on."""
    return f"{swarm.now():%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    notes: tuple[str, ...]


# How long a command waits, by default, for each lock another command holds.
LOCK_WAIT = 600


@dataclass(frozen=True)
class Locking:
    """How to treat the locks of other commands: `wait` bounds every wait for one."""

    wait: float = LOCK_WAIT


def deploy_branch(
    project: Project,
    branch_name: str,
    version: str,
    reporter: Reporter,
    *,
    target: str | None = None,
    environ: Mapping[str, str] | None = None,
    transfer: bool = False,
    force: bool = False,
    source_url: str | None = None,
    deployed_by: str = "",
    locking: Locking = Locking(),
    rollback: bool = False,
    prebuilt: Release | None = None,
    update_shared: bool = False,
) -> Outcome:
    """Deploy `version` of a branch; `prebuilt`: images already published elsewhere (the
    Dagger module builds them); `rollback`: the release the live one replaced.

    Every secret is read, and the branch's lock taken, before anything changes.
    """
    config = project.config
    target = config.target_for(target)
    branch = config.branch(branch_name)
    if not rollback:
        pipeline.release(config, version)  # its tag is checked before the lock is taken
    secrets = stack_secrets.resolve(config, branch, environ)
    secrets.require_all()
    executor = Executor(config.root, env=environ)
    building = not rollback and prebuilt is None
    if building and executor.run(commands.buildx_version(), check=False).returncode != 0:
        # the classic builder still honours --platform and builds FROM local images
        executor.env.setdefault("DOCKER_BUILDKIT", "0")
        reporter.note("docker buildx is not installed: building with the classic builder")
    swarm = Swarm(target)
    action = f"rollback of {branch_name}" if rollback else f"deploy of {branch_name} {version}"
    try:
        swarm.require_manager()
        lock = SwarmLock.of_branch(executor, swarm, config, branch_name, deployed_by, action)
        with lock.held(locking.wait, reporter) as lease:
            facts, notes = read_facts(swarm, executor, config, branch)
            for note in notes:
                reporter.note(note)
            release = previous_release(facts, branch) if rollback else prebuilt
            the_plan = pipeline.plan(
                project,
                branch_name,
                release.version if release else version,
                target=target,
                environ=environ,
                facts=facts,
                source_url=source_url,
                transfer=transfer,
                force=force or rollback,
                deployed_by=deployed_by,
                deployed_at=deployed_at(swarm),
                prebuilt=release,
                update_shared=update_shared,
            )
            if not the_plan.up_to_date:
                Deployer(
                    project, the_plan, secrets, executor, swarm, reporter,
                    lock.shared(config), locking.wait, lease,
                ).deploy()  # fmt: skip
            return Outcome(the_plan, tuple(notes))
    finally:
        swarm.close()


def previous_release(facts: Facts, branch: Branch) -> Release:
    """The release the live one replaced, with its images by digest, from the labels."""
    prefix = f"{LABEL}.previous."
    version = facts.state.get(f"{prefix}release")
    images = {
        key.removeprefix(f"{prefix}image."): value
        for key, value in facts.state.items()
        if key.startswith(f"{prefix}image.")
    }
    if facts.live_colour is None or version is None or not images:
        raise DeployError(
            f"no earlier release of {branch.name} is recorded on the target, so there is "
            f"nothing to roll back to; deploy one: `swarm-deploy deploy --branch {branch.name} "
            "--release <git sha>`"
        )
    return Release(version, images)
