"""Facts about the target + the config -> the ordered steps of a deploy. Pure.

`swarm-deploy plan` prints these steps; `deploy` runs the very same objects through
the one executor. An action is a docker argv (`Command`, `Pipe`) or a typed action
the deployer performs through the Engine API (waiting, gating, switching, pruning).
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import groupby
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from swarm_deploy import commands
from swarm_deploy.claims import OtherBranch, RunningShared, uses
from swarm_deploy.config import Branch, Config, Gate
from swarm_deploy.datakinds import KINDS, DataKind
from swarm_deploy.errors import TargetError
from swarm_deploy.naming import BranchNames, label, owner_labels
from swarm_deploy.render import (
    EDGE_STACK,
    NGINX_CONF,
    SHARED_STACK,
    Release,
    colour_stack_file,
    wiring,
)
from swarm_deploy.stack_secrets import BranchSecrets, StackSecret
from swarm_deploy.truth import ColourStack, as_previous, leftovers

WORKDIR = ".swarm-deploy"


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
class NginxTest:
    """`nginx -t` on a new nginx config before the edge redeploys: a one-shot job of the
    edge's image that mounts the config where the edge will, as the same Swarm config."""

    target: str
    image: str
    config: str
    file: str  # the rendered nginx.conf, relative to the project
    create: Command  # the Swarm config the edge stack will name; it may exist already
    job: RunJob

    def describe(self) -> str:
        return f"{self.create.describe()} (unless it exists); {self.job.describe()}"


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
class RewriteLive:
    """Make live/colour.conf name what nginx serves again, and reload (graceful)."""

    target: str
    edge_service: str
    colour: str

    def describe(self) -> str:
        return f"write live/colour.conf = {self.colour} in {self.edge_service}, nginx -s reload"


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
    fingerprint: str = ""

    def argv(self, release: Release) -> list[str]:
        labels = state_labels(
            self.request, release, self.colour, self.edge_hash, self.facts, self.fingerprint
        )
        labels |= {label(key): value for key, value in self.claims.items()}
        # a label is kept until removed: an image an older release had is no image of these
        stale = [
            key
            for key in self.facts.state
            if key.startswith((label("image."), label("previous."))) and key not in labels
        ]
        return commands.service_label(self.target, self.edge_service, labels, stale)

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
    Command | Pipe | PinDigests | RenderFiles | WaitConverged | RunJob | NginxTest | WaitGone
    | RemoveIfPresent | Migrate | HealthGate | Switch | RewriteLive | Record | Pause | Prune
)  # fmt: skip


class Phase(StrEnum):
    """What a step is to the deployer; plans print it, and the deployer recognises a
    step by it (what a stopped deploy undoes or finishes)."""

    REPAIR = "repair"
    BUILD = "build"
    PUBLISH = "publish"
    TRANSFER = "transfer"
    RENDER = "render"
    NGINX = "nginx"
    SECRETS = "secrets"
    # changes what every branch uses: shared secrets, the shared stack and its configs
    SHARED = "shared"
    DATABASES = "databases"
    EDGE = "edge"
    MIGRATE = "migrate"
    COLOUR = "colour"
    GATE = "gate"
    SWITCH = "switch"
    RECORD = "record"
    SINGLETONS = "singletons"
    DRAIN = "drain"
    PRUNE = "prune"
    # destroy's
    STACKS = "stacks"
    NETWORK = "network"
    DATA = "data"


SHARED = Phase.SHARED
# What runs under the shared lock: those steps, and the data jobs, which log in with a
# shared service's admin secret (a rotation between the two would lock them out).
UNDER_SHARED_LOCK = frozenset({Phase.SHARED, Phase.DATABASES, Phase.DATA})


@dataclass(frozen=True)
class Step:
    phase: Phase
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
    # each colour whose stack runs; labels that would make the edge's say what nginx
    # serves; the colour live/colour.conf should name when it names another (truth.py)
    stacks: Mapping[str, ColourStack] = field(default_factory=lambda: MappingProxyType({}))
    relabel: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    refile: str | None = None
    # the app's other branches on the target, and its shared stack's services by kind
    others: tuple[OtherBranch, ...] = ()
    shared_stack: Mapping[str, RunningShared] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def live_release(self) -> str | None:
        return self.state.get(label("release"))

    @property
    def edge_hash(self) -> str | None:
        return self.state.get(label("edge-hash"))

    @property
    def fingerprint(self) -> str | None:
        return self.state.get(label("fingerprint"))


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
    # images already in the registry, pinned (--image, or a rollback's): nothing to build
    prebuilt: bool = False
    # the release the live one replaced: migrations do not run backwards
    rollback: bool = False
    # change the shared stack although the branch's rule does not say shared: true
    update_shared: bool = False
    # sha256 of what the builds read (sources.build_inputs), when this deploy builds
    inputs: str = ""


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
    # the release is live: nothing to do, or (with steps) only repairs
    up_to_date: bool = False
    repairs_only: bool = False
    # where users reach the branch (public_urls)
    urls: tuple[str, ...] = ()

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
            "repairs_only": self.repairs_only,
            "urls": list(self.urls),
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
    elif plan.repairs_only:
        live = f"{plan.old_colour} is live at release {plan.release.version}; repairs only"
    elif plan.old_colour:
        live = f"{plan.old_colour} is live; {plan.new_colour} replaces it"
    else:
        live = f"{plan.new_colour} goes live"
    if not plan.facts.read:
        live += " (target not read: this offline plan assumes no colour is live yet)"
    lines = [("bold", f"Plan: deploy {plan.app} branch {branch.name!r} to {plan.target}")]
    for heading, value in (
        ("host", branch.host),
        ("url", " and ".join(plan.urls) or NO_URL),
        ("slug", branch.slug),
        ("stacks", f"{branch.names.edge_stack}, {branch.names.colour_stack('blue')} | green"),
        ("release", plan.release.version),
        ("colour", live),
    ):
        lines.append(("", f"  {heading:<8} {value}"))
    for number, step in enumerate(plan.steps, start=1):
        lines.append(("", ""))
        lines.append(("bold", f"{number:>3}. [{step.phase}] {step.title}"))
        if step.note:
            lines.append(("dim", f"       {step.note}"))
        for action in step.actions:
            prefix = "$ " if isinstance(action, Command | Pipe) else "-> "
            lines.append(("", f"       {prefix}{action.describe()}"))
    return lines


NO_URL = (
    "no URL: the branch's rule has no port and the shared stack no Traefik; "
    "give the rule a port or add shared/traefik"
)


def public_urls(config: Config, branch: Branch, target: str) -> tuple[str, ...]:
    """Where users reach a branch: its published port on the target's host, and its host
    name through Traefik (https). A host name that no Traefik serves answers nothing."""
    urls = []
    if branch.rule.port is not None:
        host = "127.0.0.1" if target == commands.LOCAL else urlsplit(target).hostname
        urls.append(f"http://{host}:{branch.rule.port}")
    if "traefik" in config.shared:
        urls.append(f"https://{branch.host}")
    return tuple(urls)


def where(plan: Plan) -> str:
    """`at <url> and <url>`, or why there is none."""
    return f"at {' and '.join(plan.urls)}" if plan.urls else f"({NO_URL})"


def _action_json(action: Action) -> dict[str, Any]:
    result: dict[str, Any] = {"kind": type(action).__name__, "describe": action.describe()}
    if isinstance(action, Command):
        result["argv"] = list(action.argv)
        result["stdin_secret"] = action.stdin_secret
    if isinstance(action, RunJob):
        result["argv"] = list(action.argv)
    if isinstance(action, NginxTest):
        result["argv"] = list(action.job.argv)
    return result


def render_dir(branch: Branch) -> str:
    """Where deploy writes the branch's rendered files, relative to the project."""
    return f"{WORKDIR}/{branch.slug}"


def run(argv: list[str], stdin_secret: str | None = None, done_if: str | None = None) -> Command:
    return Command(tuple(argv), stdin_secret, done_if)


def deploy_fingerprint(files: Mapping[str, str], request: Request) -> str:
    """sha256 of everything a deploy hands over: the rendered files (images, secrets by
    their value's hash, configs, the release) and what the builds read. The same again
    on the target is the only "nothing to do"."""
    digest = hashlib.sha256()
    for path, content in sorted(files.items()):
        digest.update(f"{path}\0{len(content)}\0{content}".encode("utf-8", "surrogateescape"))
    digest.update(f"inputs\0{request.inputs}\0source\0{request.source_url or ''}".encode())
    return digest.hexdigest()


def state_labels(
    request: Request,
    release: Release,
    colour: str,
    edge_hash: str,
    facts: Facts,
    fingerprint: str = "",
) -> dict[str, str]:
    """What the edge service's labels record after a switch (images by digest once pinned);
    the release it replaces is kept under `previous.` for rollback."""
    labels = {
        label("live-colour"): colour,
        label("release"): release.version,
        label("deployed-at"): request.deployed_at,
        label("deployed-by"): request.deployed_by,
        label("edge-hash"): edge_hash,
        label("fingerprint"): fingerprint,
        **{label(f"image.{name}"): ref for name, ref in release.images.items()},
    }
    previous = {k: v for k, v in facts.state.items() if k.startswith(label("previous."))}
    if facts.live_release and facts.live_release != request.release.version:
        previous = as_previous(facts.state)
    return {**labels, **previous}


def deploy_plan(
    config: Config,
    branch: Branch,
    secrets: BranchSecrets,
    request: Request,
    *,
    facts: Facts = Facts(),
    edge_hash: str = "",
    nginx_config: str = "",
    in_use: frozenset[str] = frozenset(),
    shared_changes: tuple[str, ...] = (),
    fingerprint: str = "",
) -> Plan:
    """The steps that deploy `request.release` of `branch`, in order.

    `nginx_config` is the Swarm config the edge stack names for the rendered nginx.conf.
    `in_use` names every secret and config the rendered stacks reference: prune keeps them.
    `shared_changes` says how the shared stack will change (what claims.check_shared found).
    `fingerprint` (deploy_fingerprint) is recorded; when the live one equals it, and only
    then, there is nothing to do (or only repairs).
    """
    if request.transfer and facts.nodes > 1:
        raise TargetError(
            f"{request.target} is a swarm of {facts.nodes} nodes: images streamed without a "
            "registry would reach only the node the deploy connects to; push to a registry "
            "instead (drop --no-registry)"
        )
    old = facts.live_colour
    new = "green" if old == "blue" else "blue"
    urls = public_urls(config, branch, request.target)
    # a release name alone says too little: the same one with another secret value,
    # config or template, or rebuilt from other sources, is not what runs
    if old is not None and fingerprint and facts.fingerprint == fingerprint and not request.force:
        repairs = tuple(_repair_steps(config, branch, request.target, facts, whole=True))
        return Plan(
            config.app, branch, request, old, old, facts, repairs,
            up_to_date=not repairs, repairs_only=bool(repairs), urls=urls,
        )  # fmt: skip
    target = request.target
    steps = [
        *_repair_steps(config, branch, target, facts, whole=False),
        *_build_steps(config, request),
        *_publish_steps(config, request),
        Step(Phase.RENDER, "render the branch's files", (RenderFiles(render_dir(branch)),)),
        *_nginx_test_steps(config, branch, request, edge_hash, nginx_config, facts),
        *_secret_steps(target, config.app, branch.slug, secrets.branch.values(), facts),
        # one hold of the shared lock: the data jobs log in with the secrets just ensured
        *_secret_steps(target, config.app, "shared", secrets.shared.values(), facts, SHARED),
        *_shared_steps(config, branch, request, facts, shared_changes),
        *_database_steps(config, branch, secrets, request),
        *_edge_steps(config, branch, request, edge_hash, facts),
        *_migrate_steps(config, branch, secrets, request, new),
        *_blue_green_steps(config, branch, request, new, old),
        Step(
            Phase.RECORD,
            "record the live colour and release on the Swarm",
            (
                Record(
                    target,
                    branch.names.edge_service,
                    new,
                    edge_hash,
                    request,
                    facts,
                    claims={"host": branch.host, "uses": ",".join(uses(config))},
                    fingerprint=fingerprint,
                ),
            ),
            "right after the switch, so the next deploy knows what is live",
        ),
        *_after_switch_steps(config, branch, request, new, old),
        Step(
            Phase.PRUNE,
            "remove the branch's secrets and configs nothing uses any more",
            (Prune(target, config.app, branch.slug, (branch.names.edge_stack,), in_use),),
        ),
        Step(
            SHARED,
            "remove shared secrets and configs nothing uses any more",
            (Prune(target, config.app, "shared", (config.shared_names.stack,), in_use),),
        ),
    ]
    return Plan(
        config.app, branch, request, new, old, facts, tuple(steps), secrets.warnings(), urls=urls
    )


def _repair_steps(
    config: Config, branch: Branch, target: str, facts: Facts, whole: bool
) -> list[Step]:
    """What an interrupted deploy left disagreeing with what nginx serves: the file and
    the labels always; with `whole` (the release is live, no deploy follows), also a
    colour left running beside the live one and singletons out of place."""
    names = branch.names
    steps = []
    if facts.refile is not None:
        steps.append(Step(Phase.REPAIR, f"point live/colour.conf at {facts.refile} again", (
            RewriteLive(target, names.edge_service, facts.refile),
        ), "nginx reads the file on its next reload or restart"))  # fmt: skip
    if facts.relabel:
        steps.append(Step(Phase.REPAIR, f"record that {facts.live_colour} is live", (
            run(commands.service_label(target, names.edge_service, facts.relabel)),
        ), "status and rollback read these labels"))  # fmt: skip
    if not whole or facts.live_colour is None:
        return steps
    for colour in leftovers(facts.live_colour, facts.stacks):
        stack = names.colour_stack(colour)
        steps.append(Step(Phase.REPAIR, f"remove {stack}: it is not live", (
            run(commands.stack_rm(target, stack)),
        )))  # fmt: skip
    live = facts.stacks.get(facts.live_colour)
    for service, replicas in sorted(live.singletons.items() if live else ()):
        if replicas != 1:
            name = names.colour_service(facts.live_colour, service)
            steps.append(Step(Phase.REPAIR, f"run the singleton {name}", (
                run(commands.service_scale(target, name, 1)),
            )))  # fmt: skip
    return steps


def _build_steps(config: Config, request: Request) -> list[Step]:
    if request.prebuilt:
        return []
    labels = {"org.opencontainers.image.revision": request.release.version}
    if request.source_url:
        labels["org.opencontainers.image.source"] = request.source_url
    return [
        Step(
            Phase.BUILD,
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
        pushes = [Step(Phase.PUBLISH, f"push {ref}", (run(commands.push(ref)),)) for ref in refs]
        return [*pushes, Step(Phase.PUBLISH, "pin digests", (PinDigests(refs),))]
    if request.target == commands.LOCAL:
        return []  # built on the target's own engine: nothing to move
    return [
        Step(
            Phase.TRANSFER,
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
    phase: Phase = Phase.SECRETS,
) -> list[Step]:
    steps = []
    for secret in secrets:
        if facts.read and secret.swarm_name in facts.existing_secrets:
            continue
        labels = owner_labels(app, scope) | {label("key"): secret.key}
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
            (deploy, WaitConverged(request.target, stack, config.timeouts.shared_start)),
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
    for kind in KINDS.values():
        if kind.branch_key not in secrets.branch:
            continue  # no service of the branch uses it
        admin = config.shared[kind.name].admin_password
        assert admin is not None
        job = data_job(
            config,
            branch.names,
            request.target,
            kind,
            kind.ensure,
            secrets.shared[admin].swarm_name,
            secrets.branch[kind.branch_key].swarm_name,
        )
        title = data_title(kind.ensure_title, config, branch.names, kind)
        note = f"a one-shot job on the shared network; {kind.note}"
        steps.append(Step(Phase.DATABASES, title, (job,), note))
    return steps


def data_title(template: str, config: Config, names: BranchNames, kind: DataKind) -> str:
    return kind.title(template, names, config.shared[kind.name].databases)


def data_job(
    config: Config,
    names: BranchNames,
    target: str,
    kind: DataKind,
    script: str,
    admin_secret: str,
    branch_secret: str | None = None,
) -> RunJob:
    """A one-shot job that runs `script` (the kind's ensure or drop) for the branch against
    the shared service of `kind`, as that service's admin."""
    service = config.shared[kind.name]
    job = names.job(kind.job)
    argv = commands.data_job(
        target,
        kind,
        script=script,
        name=job,
        image=service.image,
        network=config.shared_names.network,
        host=config.shared_names.service(kind.name),
        admin_secret=admin_secret,
        args=kind.job_args(names, service.databases),
        labels=names.owner_labels,
        branch_secret=branch_secret,
    )
    return RunJob(tuple(argv), job, config.timeouts.data_jobs)


def _edge_changes(edge_hash: str, facts: Facts) -> bool:
    """The edge stack is deployed when it is new or any of its files changed."""
    return not (facts.read and facts.edge_hash == edge_hash)


def _nginx_test_steps(
    config: Config,
    branch: Branch,
    request: Request,
    edge_hash: str,
    nginx_config: str,
    facts: Facts,
) -> list[Step]:
    """Before anything changes, the nginx config the edge would restart with is tested
    where it will run: a config nginx refuses would stop the edge (stop-first) until Swarm
    rolled it back, refusing every connection meanwhile."""
    if not _edge_changes(edge_hash, facts):
        return []
    names = branch.names
    file = f"{render_dir(branch)}/{NGINX_CONF}"
    # the label the edge stack gives its configs: its deploy adopts this one, prune sees it
    create = commands.config_create(
        request.target, nginx_config, file, {"com.docker.stack.namespace": names.edge_stack}
    )
    job = names.job("nginx-t")
    argv = commands.run_job(
        request.target,
        name=job,
        image=config.edge.image,
        command=commands.nginx_test(),
        networks=[],
        secrets={},
        env={},
        labels=branch.names.owner_labels,
        configs={commands.NGINX_CONF_PATH: nginx_config},
    )
    test = NginxTest(
        request.target,
        config.edge.image,
        nginx_config,
        file,
        run(create, done_if="already exists"),
        RunJob(tuple(argv), job, config.timeouts.edge_start),
    )
    return [
        Step(
            Phase.NGINX,
            f"test the new nginx config of {names.edge_stack} with nginx -t",
            (test,),
            "in the edge's image, the config mounted as the edge will mount it; if nginx "
            "refuses it, the deploy stops here with nginx's own error and the edge is untouched"
            + ("" if facts.read else "; skipped when the edge's files are unchanged"),
        )
    ]


def _edge_steps(
    config: Config, branch: Branch, request: Request, edge_hash: str, facts: Facts
) -> list[Step]:
    if not _edge_changes(edge_hash, facts):
        return []
    names = branch.names
    deploy = commands.stack_deploy(
        request.target, f"{render_dir(branch)}/{EDGE_STACK}", names.edge_stack
    )
    return [
        Step(
            Phase.EDGE,
            f"deploy the edge stack {names.edge_stack}",
            (
                run(deploy),
                WaitConverged(request.target, names.edge_stack, config.timeouts.edge_start),
            ),
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
            Phase.COLOUR,
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
            Phase.GATE,
            f"health gate for {new}",
            (HealthGate(target, names.edge_service, new, paths, config.gate),),
            f"on failure: remove {new_stack}; "
            + (f"{old} stays live" if old else "the branch keeps answering 503 (maintenance)"),
        ),
        Step(
            Phase.SWITCH,
            f"switch {branch.host} to {new}",
            (Switch(target, names.edge_service, new, paths),),
        ),
    ]


def _migrate_steps(
    config: Config, branch: Branch, secrets: BranchSecrets, request: Request, colour: str
) -> list[Step]:
    steps = []
    for service in config.services.values():
        if not service.migrate or request.rollback:
            continue
        wired = wiring(config, branch, secrets, service, colour, request.release.version)
        networks = (branch.names.network,)
        job = Migrate(
            request.target,
            job=branch.names.job("migrate"),
            image=service.image,
            command=service.migrate,
            env=wired.env,
            secrets={key: secrets.branch[key].swarm_name for key in wired.secrets},
            networks=networks,
            labels=branch.names.owner_labels,
            timeout=config.timeouts.migrate,
        )
        steps.append(
            Step(
                Phase.MIGRATE,
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
        steps.append(
            Step(Phase.SINGLETONS, "move singletons: stop the old, then start the new", moves)
        )
    if old is not None:
        drain = Pause(
            config.edge.drain,
            "the old colour finishes in-flight requests and nginx's DNS cache (5 s) forgets it",
        )
        remove = run(commands.stack_rm(target, names.colour_stack(old)))
        steps.append(
            Step(Phase.DRAIN, f"drain and remove {names.colour_stack(old)}", (drain, remove))
        )
    return steps
