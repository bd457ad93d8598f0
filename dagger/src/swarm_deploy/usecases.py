"""The commands as use cases: each takes one typed request and returns a typed result.

The CLI and the Dagger module parse their options into a request and print the result;
everything between is here. A branch, its target (`--host`, else the config's `target`)
and its secrets are resolved once per command (`subject`), then handed down whole.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import datetime

from swarm_deploy import commands, facts, gate, pipeline, sources, stack_secrets
from swarm_deploy import status as status_module
from swarm_deploy.config import Branch, Config
from swarm_deploy.deploy import Deployer, read_facts
from swarm_deploy.destroy import (
    deployed_branches,
    destroy_plan,
    read_remains,
    refuse_protected,
    stale,
)
from swarm_deploy.engine import Executor, Swarm, SwarmApi
from swarm_deploy.errors import (
    ConfigError,
    DestroyError,
    LockError,
    RollbackError,
    UnlockError,
    named,
)
from swarm_deploy.lock import SwarmLock
from swarm_deploy.lock import unlock as free
from swarm_deploy.naming import label
from swarm_deploy.pipeline import Project, Subject
from swarm_deploy.plan import Facts, Plan, Request, Step
from swarm_deploy.render import Release
from swarm_deploy.runner import Reporter, Runner
from swarm_deploy.status import BranchStatus, ServiceHealth

# How long a command waits, by default, for each lock another command holds.
LOCK_WAIT = 600


def target(config: Config, host: str | None) -> str:
    """Where a command goes: `--host` when given, else the config's `target`."""
    return config.target_for(host)


def subject(
    project: Project, branch: str, host: str | None, environ: Mapping[str, str] | None
) -> Subject:
    """The target, the branch (its rule) and its secrets' values, resolved once."""
    where = target(project.config, host)
    allowed = project.config.branch(branch)
    return Subject(project, allowed, where, stack_secrets.resolve(project.config, allowed, environ))


# --- check


@dataclass(frozen=True)
class CheckRequest:
    project: Project


@dataclass(frozen=True)
class Checked:
    """Each sample branch's rendered files; nginx's version here, None when not installed."""

    rendered: dict[str, dict[str, str]]
    nginx: str | None


def check(request: CheckRequest) -> Checked:
    """The config, every template and each secret value set; nginx -t where installed."""
    project = request.project
    stack_secrets.check_sources(project.config)
    rendered = pipeline.check(project)
    nginx = (
        pipeline.nginx_test_locally(Executor(project.config.root), rendered)
        if shutil.which("nginx")
        else None
    )
    return Checked(rendered, nginx)


# --- plan and render


@dataclass(frozen=True)
class PlanRequest:
    """A deploy of `release` (None: what the sources name) of a branch, as `deploy` would
    run it against `facts` (none read: a first deploy); `prebuilt`: images already
    published (`rollback`: those of the release the live one replaced); `inputs`: what
    the builds read (sources.build_inputs)."""

    project: Project
    branch: str
    release: str | None = None
    host: str | None = None
    environ: Mapping[str, str] | None = None
    facts: Facts = Facts()
    source_url: str | None = None
    transfer: bool = False
    force: bool = False
    deployed_by: str = ""
    deployed_at: str = ""
    prebuilt: Release | None = None
    rollback: bool = False
    update_shared: bool = False
    inputs: str = ""


def plan(request: PlanRequest) -> Plan:
    """What a deploy would do; reads nothing on the target. Refuses a secret whose value
    is set but cannot be used."""
    asked = subject(request.project, request.branch, request.host, request.environ)
    asked.secrets.require_usable()
    return _plan(asked, request)


def _plan(asked: Subject, request: PlanRequest) -> Plan:
    config = asked.project.config
    version = request.release or sources.release_version(config)
    return pipeline.plan(
        asked,
        Request(
            target=asked.target,
            release=request.prebuilt or pipeline.release(config, version),
            prebuilt=request.prebuilt is not None,
            rollback=request.rollback,
            source_url=request.source_url,
            transfer=request.transfer,
            force=request.force,
            deployed_by=request.deployed_by,
            deployed_at=request.deployed_at,
            update_shared=request.update_shared,
            inputs="" if request.prebuilt else request.inputs,
        ),
        request.facts,
    )


@dataclass(frozen=True)
class RenderRequest:
    project: Project
    branch: str
    release: str | None = None
    environ: Mapping[str, str] | None = None
    live_colour: str = "blue"


@dataclass(frozen=True)
class Rendered:
    """The branch's files by path, and a warning for each secret that could not be read."""

    files: dict[str, str]
    warnings: list[str]


def render(request: RenderRequest) -> Rendered:
    """A branch's stacks, nginx, Promtail, Prometheus and Grafana files."""
    project = request.project
    version = request.release or sources.release_version(project.config)
    files, warnings = pipeline.render(
        project, request.branch, version, environ=request.environ, live_colour=request.live_colour
    )
    return Rendered(files, warnings)


# --- deploy and rollback


@dataclass(frozen=True)
class DeployRequest:
    """`images`: NAME=REF of images already published by digest, one per image of the
    config (nothing is built); `actor`: who deploys, as recorded on the Swarm."""

    project: Project
    branch: str
    release: str | None = None
    host: str | None = None
    environ: Mapping[str, str] | None = None
    transfer: bool = False
    force: bool = False
    images: tuple[str, ...] = ()
    source_url: str | None = None
    actor: str = ""
    lock_wait: float = LOCK_WAIT
    update_shared: bool = False


@dataclass(frozen=True)
class RollbackRequest:
    project: Project
    branch: str
    host: str | None = None
    environ: Mapping[str, str] | None = None
    actor: str = ""
    lock_wait: float = LOCK_WAIT
    update_shared: bool = False


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    notes: tuple[str, ...]


def deploy(request: DeployRequest, reporter: Reporter, clock: gate.Clock = gate.Clock()) -> Outcome:
    """Build (or take `images`), publish and deploy a release of the branch blue/green.
    Every secret is read, and the branch's lock taken, before anything changes."""
    config = request.project.config
    # what the builds read: a release rebuilt from other sources is not the live one
    inputs = "" if request.images else sources.build_inputs(config)
    version = request.release or sources.release_version(config, inputs)
    prebuilt = published(config, version, request.images) if request.images else None
    pipeline.release(config, version)  # its tag is checked before the lock is taken
    asked = PlanRequest(
        request.project, request.branch, version, request.host, request.environ,
        source_url=request.source_url, transfer=request.transfer, force=request.force,
        deployed_by=request.actor, prebuilt=prebuilt, update_shared=request.update_shared,
        inputs=inputs,
    )  # fmt: skip
    return _deploy(asked, request.lock_wait, reporter, clock)


def rollback(
    request: RollbackRequest, reporter: Reporter, clock: gate.Clock = gate.Clock()
) -> Outcome:
    """Put the release before the live one back, by its recorded digests, through the
    same gate and switch."""
    asked = PlanRequest(
        request.project, request.branch, "", request.host, request.environ,
        force=True, deployed_by=request.actor, rollback=True,
        update_shared=request.update_shared,
    )  # fmt: skip
    with named(RollbackError):
        return _deploy(asked, request.lock_wait, reporter, clock)


def _deploy(asked: PlanRequest, lock_wait: float, reporter: Reporter, clock: gate.Clock) -> Outcome:
    """The plan, made under the branch's lock from what the target holds, then run."""
    project = asked.project
    config = project.config
    resolved = subject(project, asked.branch, asked.host, asked.environ)
    resolved.secrets.require_all()
    branch = resolved.branch
    executor = Executor(config.root, env=asked.environ)
    building = not asked.rollback and asked.prebuilt is None
    if building and executor.run(commands.buildx_version(), check=False).returncode != 0:
        # the classic builder still honours --platform and builds FROM local images
        executor.env.setdefault("DOCKER_BUILDKIT", "0")
        reporter.note("docker buildx is not installed: building with the classic builder")
    action = (
        f"rollback of {branch.name}"
        if asked.rollback
        else f"deploy of {branch.name} {asked.release}"
    )
    swarm = Swarm(resolved.target)
    with closing(swarm):
        swarm.require_manager()
        lock = SwarmLock.of_branch(executor, swarm, config, branch.name, asked.deployed_by, action)
        lock = replace(lock, clock=clock)  # waits for it on the deploy's clock, as the gate's
        with lock.held(lock_wait, reporter) as lease:
            held, notes = read_facts(swarm, executor, config, branch)
            for note in notes:
                reporter.note(note)
            if asked.rollback:
                release, dropped = previous_release(held, branch, config)
                notes += dropped
                for note in dropped:
                    reporter.note(note)
                asked = replace(asked, release=release.version, prebuilt=release)
            asked = replace(asked, facts=held, deployed_at=deployed_at(swarm))
            the_plan = _plan(resolved, asked)
            if not the_plan.up_to_date:
                Deployer(
                    project, the_plan, resolved.secrets, executor, swarm, reporter,
                    lock.shared(config), lock_wait, lease, clock,
                ).deploy()  # fmt: skip
            return Outcome(the_plan, tuple(notes))


def deployed_at(swarm: SwarmApi) -> str:
    """Now, on the manager's clock: what `status` and `destroy --stale` measure ages on."""
    return f"{swarm.now():%Y-%m-%dT%H:%M:%SZ}"


def published(config: Config, version: str, images: tuple[str, ...]) -> Release:
    """`--image NAME=REF` options as a release; every image of the config, by digest."""
    refs = {}
    for item in images:
        name, sep, ref = item.partition("=")
        if not sep or "@sha256:" not in ref:
            raise ConfigError("--image", f"should be NAME=registry/repo@sha256:..., got {item!r}")
        refs[name] = ref
    expected = set(config.images)
    if set(refs) != expected:
        raise ConfigError(
            "--image",
            f"give one per image of the config ({', '.join(sorted(expected))}), "
            f"got {', '.join(sorted(refs)) or 'none'}",
        )
    return Release(version, refs)


def previous_release(facts: Facts, branch: Branch, config: Config) -> tuple[Release, list[str]]:
    """The release the live one replaced, with its images by digest, from the labels, as
    this config runs it; and a note for each image of it the config no longer names."""
    prefix = label("previous.")
    version = facts.state.get(f"{prefix}release")
    images = {
        key.removeprefix(f"{prefix}image."): value
        for key, value in facts.state.items()
        if key.startswith(f"{prefix}image.")
    }
    if facts.live_colour is None or version is None or not images:
        raise RollbackError(
            f"no earlier release of {branch.name} is recorded on the target, so there is "
            f"nothing to roll back to; deploy one: `swarm-deploy deploy --branch {branch.name} "
            "--release <git sha>`"
        )
    release, lacking = Release(version, images).fitted(config)
    if lacking:
        missing = ", ".join(
            f"no image {image} for the service {name}" for name, image in lacking.items()
        )
        raise RollbackError(
            f"cannot roll back {branch.name} to release {version}: that release has "
            f"{missing}, which this config runs (its images: {', '.join(sorted(images))}). "
            "Nothing was changed.\n"
            "next: run the rollback from a checkout of the project as it was at release "
            f"{version} (its config runs only what that release has), or deploy a release "
            f"that fixes the live one: `swarm-deploy deploy --branch {branch.name}`"
        )
    dropped = sorted(set(images) - set(release.images))
    return release, [
        f"release {version} also has the image {name}, which this config no longer names: "
        "not deployed"
        for name in dropped
    ]


# --- destroy


@dataclass(frozen=True)
class DestroyRequest:
    """`dry_run`: only list the steps; `force`: also a protected branch."""

    project: Project
    branch: str
    host: str | None = None
    drop_data: bool = False
    dry_run: bool = False
    force: bool = False
    actor: str = ""
    lock_wait: float = LOCK_WAIT


@dataclass(frozen=True)
class Destroyed:
    """The steps run (only listed, with dry_run); none when nothing of the branch was there."""

    branch: str
    target: str
    steps: list[Step]


def destroy(request: DestroyRequest, reporter: Reporter) -> Destroyed:
    """Remove what the target holds of one branch, under the branch's lock."""
    config = request.project.config
    where = target(config, request.host)
    name = request.branch
    names = config.names(name)
    rule = refuse_protected(config, name, request.force)
    swarm = Swarm(where)
    with closing(swarm):
        swarm.require_manager()
        if request.dry_run:
            remains = read_remains(swarm, config, names)
            return Destroyed(
                name, where, destroy_plan(config, names, where, remains, request.drop_data)
            )
        executor = Executor(config.root)
        lock = SwarmLock.of_branch(
            executor, swarm, config, name, request.actor, f"destroy of {name}"
        )
        with lock.held(request.lock_wait, reporter) as lease:
            remains = read_remains(swarm, config, names)
            steps = destroy_plan(config, names, where, remains, request.drop_data)
            if steps and rule is None:
                reporter.note(f"no rule allows {name} any more: removing what it left on {where}")
            # the data jobs log in with the shared admin secrets: not while one rotates
            runner = Runner(executor, swarm, reporter, fence=lease.check)
            with named(DestroyError):
                runner.run(steps, lambda: lock.shared(config).held(request.lock_wait, reporter))
        return Destroyed(name, where, steps)


@dataclass(frozen=True)
class StaleRequest:
    project: Project
    days: float
    host: str | None = None


def stale_branches(request: StaleRequest) -> list[str]:
    """Branches not deployed for `days`, both times on the manager's clock; protected
    ones never."""
    config = request.project.config
    swarm = Swarm(target(config, request.host))
    with closing(swarm):
        edges = facts.edges(swarm, config.app)
        now = swarm.now()
    return stale(config, deployed_branches(edges), request.days, now)


# --- status and unlock


@dataclass(frozen=True)
class StatusRequest:
    project: Project
    host: str | None = None
    branch: str | None = None


@dataclass(frozen=True)
class Status:
    """Every branch on `target` (only `branch`, when asked), the shared stack's services,
    and the manager's clock the ages are measured on."""

    target: str
    branches: list[BranchStatus]
    shared: tuple[ServiceHealth, ...]
    now: datetime = field(compare=False)


def status(request: StatusRequest) -> Status:
    """What runs on the target: each branch's live colour, release and task health."""
    config = request.project.config
    where = target(config, request.host)
    slug = config.names(request.branch).slug if request.branch is not None else None
    swarm = Swarm(where)
    with closing(swarm):
        branches, shared = status_module.read(swarm, Executor(config.root), config)
        now = swarm.now()
    if slug is not None:
        branches = [b for b in branches if b.slug == slug]
    return Status(where, branches, shared, now)


@dataclass(frozen=True)
class UnlockRequest:
    """The lock of `branch`, or with `shared` the shared stack's."""

    project: Project
    branch: str | None = None
    shared: bool = False
    host: str | None = None


def unlock(request: UnlockRequest) -> str:
    """Free a lock whose holder is gone; says what was freed (or that nothing was locked)."""
    config = request.project.config
    swarm = Swarm(target(config, request.host))
    with closing(swarm):
        swarm.require_manager()
        executor = Executor(config.root)
        lock = (
            SwarmLock.of_branch(executor, swarm, config, request.branch, "", "unlock")
            if request.branch is not None
            else SwarmLock.of_shared(executor, swarm, config, "", "unlock")
        )
        with named(UnlockError, LockError):
            return free(lock)
