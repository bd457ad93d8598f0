"""Facts about the target + the config -> the ordered steps of a deploy. Pure.

`swarm-deploy plan` prints these steps; `deploy` runs the very same objects through
the one executor. An action is a docker argv (`Command`, `Pipe`) or a typed action
the deployer performs through the Engine API (waiting, gating, switching, pruning).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from types import MappingProxyType
from typing import Any

from swarm_deploy import commands
from swarm_deploy.claims import OtherBranch, RunningShared, uses
from swarm_deploy.config import Branch, Config, Gate
from swarm_deploy.errors import TargetError
from swarm_deploy.naming import BranchNames
from swarm_deploy.render import EDGE_STACK, SHARED_STACK, Release, colour_stack_file, wiring
from swarm_deploy.stack_secrets import BranchSecrets, StackSecret

WORKDIR = ".swarm-deploy"
LABEL = "swarm-deploy"


@dataclass(frozen=True)
class Command:
    """A docker command; `stdin_secret` names the secret whose value goes to its stdin;
    `done_if` is an error message that means what the command does is already done."""

    argv: tuple[str, ...]
    stdin_secret: str | None = None
    done_if: str | None = None

    def describe(self) -> str:
        shown = shlex.join(self.argv)
        return f"{shown} < secret {self.stdin_secret}" if self.stdin_secret else shown


@dataclass(frozen=True)
class Pipe:
    """One command's stdout into another's stdin: images to a target without a registry."""

    producer: tuple[str, ...]
    consumer: tuple[str, ...]

    def describe(self) -> str:
        return f"{shlex.join(self.producer)} | {shlex.join(self.consumer)}"


@dataclass(frozen=True)
class PinDigests:
    """Read each pushed image's digest, so the stacks deploy `image@sha256:...`."""

    refs: tuple[str, ...]

    def describe(self) -> str:
        return "pin " + ", ".join(self.refs) + " to their registry digests"


@dataclass(frozen=True)
class RenderFiles:
    directory: str

    def describe(self) -> str:
        return f"write the branch's stacks and configs to {self.directory}/"


@dataclass(frozen=True)
class WaitConverged:
    """Read each service's tasks and UpdateStatus until all run, or one fails."""

    target: str
    stack: str
    timeout: float

    def describe(self) -> str:
        return (
            f"wait until every task of {self.stack} runs and no update rolled back "
            f"(at most {self.timeout:g}s; a failed or rejected task fails the deploy)"
        )


@dataclass(frozen=True)
class RunJob:
    """A one-shot Swarm job (it runs on whichever node can take it): start, wait, remove."""

    argv: tuple[str, ...]
    job: str
    timeout: float

    def describe(self) -> str:
        return f"{shlex.join(self.argv)}  (then wait for the job, at most {self.timeout:g}s)"


@dataclass(frozen=True)
class WaitGone:
    """Wait until the stacks' containers have stopped (networks and volumes free up then)."""

    target: str
    stacks: tuple[str, ...]
    timeout: float

    def describe(self) -> str:
        stacks = ", ".join(self.stacks)
        return f"wait until no container of {stacks} is left (at most {self.timeout:g}s)"


@dataclass(frozen=True)
class RemoveIfPresent:
    """`docker <kind> rm NAME` for each name, where "not found" means already done."""

    target: str
    kind: str
    names: tuple[str, ...]

    def argv(self, name: str) -> list[str]:
        return commands.docker(self.target, self.kind, "rm", name)

    def describe(self) -> str:
        return "; ".join(shlex.join(self.argv(name)) for name in self.names) + " (if present)"


@dataclass(frozen=True)
class HealthGate:
    """Tasks healthy, then N consecutive 200s through the edge's preview route."""

    target: str
    edge_service: str
    colour: str
    paths: tuple[str, ...]
    gate: Gate

    def describe(self) -> str:
        return (
            f"(a) every {self.colour} task running, healthy where the image has a HEALTHCHECK; "
            f"(b) after {self.gate.start_grace:g}s, {self.gate.consecutive} consecutive 200s "
            f"from {', '.join(self.paths)} through {self.edge_service}'s preview route, every "
            f"{self.gate.interval:g}s. At most {self.gate.timeout:g}s in all; a task that "
            "fails ends the gate at once"
        )


@dataclass(frozen=True)
class Switch:
    """Point the edge at a colour: rewrite live/colour.conf, nginx -t, reload, verify."""

    target: str
    edge_service: str
    colour: str
    paths: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"write live/colour.conf = {self.colour} in {self.edge_service}, nginx -t, "
            f"nginx -s reload (graceful), then check that {', '.join(self.paths)} answer "
            f"from {self.colour} through the public route"
        )


@dataclass(frozen=True)
class Record:
    """Label the edge service with what is live; images are written as pinned at run time."""

    target: str
    edge_service: str
    colour: str
    edge_hash: str
    request: Request
    facts: Facts
    # what other deploys read of this branch: the host it serves, the shared services it uses
    claims: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def argv(self, release: Release) -> list[str]:
        labels = state_labels(self.request, release, self.colour, self.edge_hash, self.facts)
        labels |= {f"{LABEL}.{key}": value for key, value in self.claims.items()}
        return commands.service_label(self.target, self.edge_service, labels)

    def describe(self) -> str:
        return shlex.join(self.argv(self.request.release)) + "  (images as pinned digests)"


@dataclass(frozen=True)
class Migrate:
    """A service's migrate command, once, as a job with the new release's image and the
    service's environment, secrets and networks, before the new colour starts."""

    target: str
    job: str
    image: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    secrets: Mapping[str, str]
    networks: tuple[str, ...]
    labels: Mapping[str, str]
    timeout: float

    def argv(self, release: Release) -> list[str]:
        return commands.run_job(
            self.target,
            name=self.job,
            image=release.images[self.image],
            command=list(self.command),
            networks=list(self.networks),
            secrets=self.secrets,
            env=self.env,
            labels=self.labels,
        )

    def describe(self) -> str:
        return f"{shlex.join(self.argv_shown)}  (then wait, at most {self.timeout:g}s)"

    @property
    def argv_shown(self) -> list[str]:
        return self.argv(Release("", {self.image: f"<{self.image} image of this release>"}))


@dataclass(frozen=True)
class Pause:
    seconds: float
    reason: str

    def describe(self) -> str:
        return f"wait {self.seconds:g}s: {self.reason}"


@dataclass(frozen=True)
class Prune:
    """Remove the secrets of a scope (a branch slug, or `shared`) and the configs of its
    stacks that the rendered stacks no longer name."""

    target: str
    app: str
    scope: str
    stacks: tuple[str, ...]
    keep: frozenset[str]

    def describe(self) -> str:
        return (
            f"remove old secrets of {self.app}/{self.scope} and old configs of "
            f"{', '.join(self.stacks)} (Swarm refuses to remove one a service still uses)"
        )


Action = (
    Command | Pipe | PinDigests | RenderFiles | WaitConverged | RunJob | WaitGone
    | RemoveIfPresent | Migrate | HealthGate | Switch | Record | Pause | Prune
)  # fmt: skip


# Steps of this phase change what every branch uses (shared secrets, the shared stack and
# its configs).
SHARED = "shared"
# What runs under the shared lock: those steps, and the data jobs, which log in with a
# shared service's admin secret (a rotation between the two would lock them out).
UNDER_SHARED_LOCK = frozenset({SHARED, "databases", "data"})


@dataclass(frozen=True)
class Step:
    phase: str
    title: str
    actions: tuple[Action, ...]
    note: str = ""


def lock_runs(steps: Sequence[Step]) -> list[tuple[bool, list[tuple[int, Step]]]]:
    """The steps, numbered from 1, in contiguous runs that do or do not hold the shared
    lock (one hold per run)."""
    numbered = enumerate(steps, start=1)
    return [
        (shared, list(run))
        for shared, run in groupby(numbered, key=lambda item: item[1].phase in UNDER_SHARED_LOCK)
    ]


@dataclass(frozen=True)
class Facts:
    """What the target looked like when the plan was made; `read` is False offline."""

    read: bool = False
    live_colour: str | None = None
    state: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    existing_secrets: frozenset[str] = frozenset()
    nodes: int = 1
    # the app's other branches on the target, and its shared stack's services by kind
    others: tuple[OtherBranch, ...] = ()
    shared_stack: Mapping[str, RunningShared] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def live_release(self) -> str | None:
        return self.state.get(f"{LABEL}.release")

    @property
    def edge_hash(self) -> str | None:
        return self.state.get(f"{LABEL}.edge-hash")


@dataclass(frozen=True)
class Request:
    """What the user asked for, beyond the branch."""

    target: str
    release: Release
    source_url: str | None = None
    transfer: bool = False
    force: bool = False
    deployed_by: str = ""
    deployed_at: str = ""
    # a rollback: images already in the registry, pinned; nothing to build or migrate
    prebuilt: bool = False
    # change the shared stack although the branch's rule does not say shared: true
    update_shared: bool = False


@dataclass(frozen=True)
class Plan:
    app: str
    branch: Branch
    request: Request
    new_colour: str
    old_colour: str | None
    facts: Facts
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()
    up_to_date: bool = False

    @property
    def target(self) -> str:
        return self.request.target

    @property
    def release(self) -> Release:
        return self.request.release

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "branch": self.branch.name,
            "slug": self.branch.slug,
            "host": self.branch.host,
            "target": self.target,
            "release": self.release.version,
            "images": dict(self.release.images),
            "new_colour": self.new_colour,
            "old_colour": self.old_colour,
            "facts_read": self.facts.read,
            "up_to_date": self.up_to_date,
            "warnings": list(self.warnings),
            "steps": [
                {
                    "phase": step.phase,
                    "title": step.title,
                    "note": step.note,
                    "actions": [_action_json(action) for action in step.actions],
                }
                for step in self.steps
            ],
        }


def plan_lines(plan: Plan) -> list[tuple[str, str]]:
    """The steps as (style, text) lines: the CLI prints them styled, Dagger returns the text."""
    branch = plan.branch
    if plan.up_to_date:
        live = f"{plan.old_colour} is live at release {plan.release.version}: nothing to do"
    elif plan.old_colour:
        live = f"{plan.old_colour} is live; {plan.new_colour} replaces it"
    else:
        live = f"{plan.new_colour} goes live"
    if not plan.facts.read:
        live += " (target not read: this offline plan assumes no colour is live yet)"
    lines = [("bold", f"Plan: deploy {plan.app} branch {branch.name!r} to {plan.target}")]
    for label, value in (
        ("host", f"https://{branch.host}"),
        ("slug", branch.slug),
        ("stacks", f"{branch.names.edge_stack}, {branch.names.colour_stack('blue')} | green"),
        ("release", plan.release.version),
        ("colour", live),
    ):
        lines.append(("", f"  {label:<8} {value}"))
    for number, step in enumerate(plan.steps, start=1):
        lines.append(("", ""))
        lines.append(("bold", f"{number:>3}. [{step.phase}] {step.title}"))
        if step.note:
            lines.append(("dim", f"       {step.note}"))
        for action in step.actions:
            prefix = "$ " if isinstance(action, Command | Pipe) else "-> "
            lines.append(("", f"       {prefix}{action.describe()}"))
    return lines


def _action_json(action: Action) -> dict[str, Any]:
    result: dict[str, Any] = {"kind": type(action).__name__, "describe": action.describe()}
    if isinstance(action, Command):
        result["argv"] = list(action.argv)
        result["stdin_secret"] = action.stdin_secret
    if isinstance(action, RunJob):
        result["argv"] = list(action.argv)
    return result


def render_dir(branch: Branch) -> str:
    """Where deploy writes the branch's rendered files, relative to the project."""
    return f"{WORKDIR}/{branch.slug}"


def run(argv: list[str], stdin_secret: str | None = None, done_if: str | None = None) -> Command:
    return Command(tuple(argv), stdin_secret, done_if)


def state_labels(
    request: Request, release: Release, colour: str, edge_hash: str, facts: Facts
) -> dict[str, str]:
    """What the edge service's labels record after a switch (images by digest once pinned);
    the release it replaces is kept under `previous.` for rollback."""
    labels = {
        f"{LABEL}.live-colour": colour,
        f"{LABEL}.release": release.version,
        f"{LABEL}.deployed-at": request.deployed_at,
        f"{LABEL}.deployed-by": request.deployed_by,
        f"{LABEL}.edge-hash": edge_hash,
        **{f"{LABEL}.image.{name}": ref for name, ref in release.images.items()},
    }
    previous_prefix = f"{LABEL}.previous."
    previous = {k: v for k, v in facts.state.items() if k.startswith(previous_prefix)}
    if facts.live_release and facts.live_release != request.release.version:
        previous = {
            previous_prefix + key.removeprefix(f"{LABEL}."): value
            for key, value in facts.state.items()
            if key.removeprefix(f"{LABEL}.").split(".")[0]
            in ("release", "image", "deployed-at", "live-colour")
        }
    return {**labels, **previous}


def deploy_plan(
    config: Config,
    branch: Branch,
    secrets: BranchSecrets,
    request: Request,
    *,
    facts: Facts = Facts(),
    edge_hash: str = "",
    in_use: frozenset[str] = frozenset(),
    shared_changes: tuple[str, ...] = (),
) -> Plan:
    """The steps that deploy `request.release` of `branch`, in order.

    `in_use` names every secret and config the rendered stacks reference: prune keeps them.
    `shared_changes` says how the shared stack will change (what claims.check_shared found).
    """
    if request.transfer and facts.nodes > 1:
        raise TargetError(
            f"{request.target} is a swarm of {facts.nodes} nodes: images streamed without a "
            "registry would reach only the node the deploy connects to; push to a registry "
            "instead (drop --no-registry)"
        )
    old = facts.live_colour
    new = "green" if old == "blue" else "blue"
    if (
        old is not None
        and facts.live_release == request.release.version
        and not request.release.version.endswith("-dirty")
        and not request.force
    ):
        return Plan(config.app, branch, request, old, old, facts, (), up_to_date=True)
    target = request.target
    steps = [
        *_build_steps(config, request),
        *_publish_steps(config, request),
        Step("render", "render the branch's files", (RenderFiles(render_dir(branch)),)),
        *_secret_steps(target, config.app, branch.slug, secrets.branch.values(), facts),
        # one hold of the shared lock: the data jobs log in with the secrets just ensured
        *_secret_steps(target, config.app, "shared", secrets.shared.values(), facts, SHARED),
        *_shared_steps(config, branch, request, facts, shared_changes),
        *_database_steps(config, branch, secrets, request),
        *_edge_steps(config, branch, request, edge_hash, facts),
        *_migrate_steps(config, branch, secrets, request, new),
        *_blue_green_steps(config, branch, request, new, old),
        Step(
            "record",
            "record the live colour and release on the Swarm",
            (
                Record(
                    target,
                    branch.names.edge_service,
                    new,
                    edge_hash,
                    request,
                    facts,
                    {"host": branch.host, "uses": ",".join(uses(config))},
                ),
            ),
            "right after the switch, so the next deploy knows what is live",
        ),
        *_after_switch_steps(config, branch, request, new, old),
        Step(
            "prune",
            "remove the branch's secrets and configs nothing uses any more",
            (Prune(target, config.app, branch.slug, (branch.names.edge_stack,), in_use),),
        ),
        Step(
            SHARED,
            "remove shared secrets and configs nothing uses any more",
            (Prune(target, config.app, "shared", (config.shared_names.stack,), in_use),),
        ),
    ]
    return Plan(config.app, branch, request, new, old, facts, tuple(steps), secrets.warnings())


def _build_steps(config: Config, request: Request) -> list[Step]:
    if request.prebuilt:
        return []
    labels = {"org.opencontainers.image.revision": request.release.version}
    if request.source_url:
        labels["org.opencontainers.image.source"] = request.source_url
    return [
        Step(
            "build",
            f"build {image.name} for {image.platform}",
            (
                run(
                    commands.build(
                        image,
                        context=image.context,
                        dockerfile=f"{image.context}/{image.dockerfile}",
                        ref=request.release.images[image.name],
                        labels=labels,
                    )
                ),
            ),
        )
        for image in config.images.values()
    ]


def _publish_steps(config: Config, request: Request) -> list[Step]:
    if request.prebuilt:
        return []
    refs = tuple(request.release.images[name] for name in config.images)
    if not request.transfer:
        pushes = [Step("publish", f"push {ref}", (run(commands.push(ref)),)) for ref in refs]
        return [*pushes, Step("publish", "pin digests", (PinDigests(refs),))]
    if request.target == commands.LOCAL:
        return []  # built on the target's own engine: nothing to move
    return [
        Step(
            "transfer",
            f"stream {ref} to {request.target} (no registry)",
            (Pipe(tuple(commands.save(ref)), tuple(commands.load(request.target))),),
            "single-node targets only: other nodes could not pull this image",
        )
        for ref in refs
    ]


def _secret_steps(
    target: str,
    app: str,
    scope: str,
    secrets: Iterable[StackSecret],
    facts: Facts,
    phase: str = "secrets",
) -> list[Step]:
    steps = []
    for secret in secrets:
        if facts.read and secret.swarm_name in facts.existing_secrets:
            continue
        labels = {f"{LABEL}.app": app, f"{LABEL}.slug": scope, f"{LABEL}.key": secret.key}
        # the name carries the value's sha256: a secret of that name holds this very value,
        # created by a concurrent deploy since the facts were read
        create = run(
            commands.secret_create(target, secret.swarm_name, labels), secret.key, "already exists"
        )
        note = f"value {secret.source}" + ("" if facts.read else "; skipped if it exists")
        steps.append(Step(phase, f"create secret {secret.swarm_name}", (create,), note))
    return steps


def _shared_steps(
    config: Config, branch: Branch, request: Request, facts: Facts, changes: tuple[str, ...]
) -> list[Step]:
    if not config.shared:
        return []
    stack = config.shared_names.stack
    if not facts.read:
        found = "; checked against what runs when the deploy starts"
    elif not facts.shared_stack:
        found = "; it does not run yet: this creates it"
    else:
        found = "; " + ("; ".join(changes) if changes else "what runs already matches")
    deploy = run(
        commands.stack_deploy(request.target, f"{render_dir(branch)}/{SHARED_STACK}", stack)
    )
    return [
        Step(
            SHARED,
            f"ensure the shared stack {stack}",
            (deploy, WaitConverged(request.target, stack, config.gate.timeout)),
            "stateful services update stop-first; unchanged services are not restarted"
            + found
            + (
                f"; they run on nodes labelled {config.swarm.data_node_label}=true"
                if config.swarm.data_node_label
                else ""
            ),
        )
    ]


def _database_steps(
    config: Config, branch: Branch, secrets: BranchSecrets, request: Request
) -> list[Step]:
    steps = []
    for kind, access in commands.DATA_ACCESS.items():
        if access.branch_key not in secrets.branch:
            continue  # no service of the branch uses it
        admin = config.shared[kind].admin_password
        assert admin is not None
        job = data_job(
            config,
            branch.names,
            request.target,
            kind,
            access.ensure,
            secrets.shared[admin].swarm_name,
            secrets.branch[access.branch_key].swarm_name,
        )
        title = data_title(access.ensure_title, config, branch.names, kind)
        note = f"a one-shot job on the shared network; {access.note}"
        steps.append(Step("databases", title, (job,), note))
    return steps


def data_title(template: str, config: Config, names: BranchNames, kind: str) -> str:
    databases = ", ".join(names.database(db) for db in config.shared[kind].databases)
    return template.format(
        role=names.role, databases=databases, prefix=names.redis_prefix, slug=names.slug
    )


def data_job(
    config: Config,
    names: BranchNames,
    target: str,
    kind: str,
    script: str,
    admin_secret: str,
    branch_secret: str | None = None,
) -> RunJob:
    """A one-shot job that runs `script` for the branch against the shared `kind` (postgres,
    mongo: its role and databases; redis: its user and key prefix), as the service's admin."""
    service = config.shared[kind]
    if service.databases:
        args = [names.role, *(names.database(db) for db in service.databases)]
    else:
        args = [names.role, names.redis_prefix]
    job = f"{config.app}-{names.slug}-{'db' if kind == 'postgres' else kind}"
    argv = commands.data_job(
        target,
        kind,
        script=script,
        name=job,
        image=service.image,
        network=config.shared_names.network,
        host=config.shared_names.service(kind),
        admin_secret=admin_secret,
        args=args,
        labels={f"{LABEL}.app": config.app, f"{LABEL}.slug": names.slug},
        branch_secret=branch_secret,
    )
    return RunJob(tuple(argv), job, config.gate.timeout)


def _edge_steps(
    config: Config, branch: Branch, request: Request, edge_hash: str, facts: Facts
) -> list[Step]:
    if facts.read and facts.edge_hash == edge_hash:
        return []
    names = branch.names
    deploy = commands.stack_deploy(
        request.target, f"{render_dir(branch)}/{EDGE_STACK}", names.edge_stack
    )
    return [
        Step(
            "edge",
            f"deploy the edge stack {names.edge_stack}",
            (run(deploy), WaitConverged(request.target, names.edge_stack, config.gate.timeout)),
            (
                "its config changed (or it is new): nginx restarts stop-first, ~0.6 s of 503"
                if facts.read
                else "skipped when its config is unchanged"
            )
            + (
                f"; it runs on nodes labelled {config.swarm.edge_node_label}=true"
                if config.swarm.edge_node_label
                else ""
            ),
        )
    ]


def _blue_green_steps(
    config: Config, branch: Branch, request: Request, new: str, old: str | None
) -> list[Step]:
    names = branch.names
    target = request.target
    files = render_dir(branch)
    paths = tuple(s.health for s in config.services.values() if s.health)
    new_stack = names.colour_stack(new)
    registry_auth = not request.transfer
    return [
        Step(
            "colour",
            f"deploy {new} ({new_stack}), singletons held at 0",
            (
                run(
                    commands.stack_deploy(
                        target,
                        f"{files}/{colour_stack_file(new)}",
                        new_stack,
                        registry_auth=registry_auth,
                        resolve_image="never",
                    )
                ),
            ),
            "images are pinned by digest already: the engine resolves nothing"
            + "".join(
                f"; at most {s.max_per_node} {s.name} per node"
                for s in config.services.values()
                if s.max_per_node
            ),
        ),
        Step(
            "gate",
            f"health gate for {new}",
            (HealthGate(target, names.edge_service, new, paths, config.gate),),
            f"on failure: remove {new_stack}; "
            + (f"{old} stays live" if old else "the branch keeps answering 503 (maintenance)"),
        ),
        Step(
            "switch",
            f"switch {branch.host} to {new}",
            (Switch(target, names.edge_service, new, paths),),
        ),
    ]


def _migrate_steps(
    config: Config, branch: Branch, secrets: BranchSecrets, request: Request, colour: str
) -> list[Step]:
    steps = []
    for service in config.services.values():
        if not service.migrate or request.prebuilt:
            continue
        wired = wiring(config, branch, secrets, service, colour, request.release.version)
        networks = (branch.names.network,)
        job = Migrate(
            request.target,
            job=f"{config.app}-{branch.slug}-migrate",
            image=service.image,
            command=service.migrate,
            env=wired.env,
            secrets={key: secrets.branch[key].swarm_name for key in wired.secrets},
            networks=networks,
            labels={f"{LABEL}.app": config.app, f"{LABEL}.slug": branch.slug},
            timeout=config.gate.timeout,
        )
        steps.append(
            Step(
                "migrate",
                f"migrate with {service.name}'s new image: {shlex.join(service.migrate)}",
                (job,),
                "both colours share the databases: migrations must suit the live release too;"
                " a failure stops the deploy before the new colour starts",
            )
        )
    return steps


def _after_switch_steps(
    config: Config, branch: Branch, request: Request, new: str, old: str | None
) -> list[Step]:
    names = branch.names
    target = request.target
    singletons = [s.name for s in config.services.values() if s.singleton]
    steps = []
    if singletons:
        stops = [] if old is None else [(old, name, 0) for name in singletons]
        starts = [(new, name, 1) for name in singletons]
        moves = tuple(
            run(commands.service_scale(target, names.colour_service(colour, name), replicas))
            for colour, name, replicas in stops + starts
        )
        steps.append(Step("singletons", "move singletons: stop the old, then start the new", moves))
    if old is not None:
        drain = Pause(
            config.edge.drain,
            "the old colour finishes in-flight requests and nginx's DNS cache (5 s) forgets it",
        )
        remove = run(commands.stack_rm(target, names.colour_stack(old)))
        steps.append(Step("drain", f"drain and remove {names.colour_stack(old)}", (drain, remove)))
    return steps
