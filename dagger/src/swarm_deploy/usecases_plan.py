"""What every command resolves first (its target, its `subject`), and the commands that
change nothing on the target: check, render and plan (which reads it only when asked:
`read_target`). The face is usecases.py."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, replace

from swarm_deploy import pipeline, sources, stack_secrets, template_files
from swarm_deploy.config import Config
from swarm_deploy.deploy import read_facts
from swarm_deploy.engine import Executor, Swarm, SwarmApi
from swarm_deploy.errors import TargetError
from swarm_deploy.pipeline import Project, Subject
from swarm_deploy.plan import Facts, Plan, Request
from swarm_deploy.render import Release

# How long a command waits, by default, for each lock another command holds.
LOCK_WAIT = 600


def target(config: Config, host: str | None) -> str:
    """Where a command goes: `--host` when given, else the config's `target`."""
    return config.target_for(host)


def open_swarm(config: Config, where: str) -> Swarm:
    """The Engine API of the manager `where` (over ssh://, through a forward to the
    config's `swarm.docker_socket` there). Raises TargetError when it does not answer."""
    return Swarm(where, socket=config.swarm.docker_socket)


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
    """The project, and what `env:` secret sources read (None: the environment)."""

    project: Project
    environ: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Checked:
    """Each sample branch's rendered files; nginx's version here, None when not installed;
    the templates the project overrides, and how each stands to the packaged one; the
    secrets whose value is missing."""

    rendered: dict[str, dict[str, str]]
    nginx: str | None
    overrides: tuple[template_files.Override, ...] = ()
    missing: tuple[str, ...] = ()


def check(request: CheckRequest) -> Checked:
    """The config, every template and each secret value set; nginx -t where installed."""
    project = request.project
    missing = stack_secrets.check_sources(project.config, request.environ)
    rendered = pipeline.check(project)
    nginx = (
        pipeline.nginx_test_locally(Executor(project.config.root), rendered, project.overrides)
        if shutil.which("nginx")
        else None
    )
    overrides = tuple(template_files.override(n, t) for n, t in project.overrides.items())
    return Checked(rendered, nginx, overrides, missing)


# --- plan and render


@dataclass(frozen=True)
class PlanRequest:
    """A deploy of `release` (None: what the sources name) of a branch, as `deploy` would
    run it against `facts` (none read: a first deploy); `prebuilt`: images already
    published (`rollback`: those of the release the live one replaced); `inputs`: what
    the builds read (sources.build_inputs); `read_target`: read the facts and the
    manager's clock on the target first, as a deploy does, without its lock."""

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
    read_target: bool = False


def plan(request: PlanRequest) -> Plan:
    """What a deploy would do; changes nothing, and reads nothing on the target unless
    `read_target`. Refuses a secret whose value is set but cannot be used."""
    asked = subject(request.project, request.branch, request.host, request.environ)
    asked.secrets.require_usable()
    if request.read_target:
        request = read_target(asked, request)
    return plan_for(asked, request)


def read_target(asked: Subject, request: PlanRequest) -> PlanRequest:
    """The request with what the target holds and the manager's clock, read as a deploy
    reads them but without taking a lock: nothing on the target changes."""
    config = asked.project.config
    try:
        swarm = open_swarm(config, asked.target)
        with closing(swarm):
            swarm.require_manager()
            executor = Executor(config.root)
            executor.reach_through(swarm)
            held, _ = read_facts(swarm, executor, config, asked.branch)
            return replace(request, facts=held, deployed_at=deployed_at(swarm))
    except TargetError as exc:
        raise TargetError(
            f"plan --read-target could not read {asked.target}: {exc}. Give --host a manager "
            "node, or plan offline (without --read-target: a first deploy is assumed)"
        ) from exc


def deployed_at(swarm: SwarmApi) -> str:
    """Now, on the manager's clock: what `status` and `destroy --stale` measure ages on."""
    return f"{swarm.now():%Y-%m-%dT%H:%M:%SZ}"


def plan_for(asked: Subject, request: PlanRequest) -> Plan:
    """The plan of a deploy of the subject already resolved (and its secrets checked)."""
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
