"""deploy and rollback: a release of a branch deployed blue/green under its lock, and the
release a rollback puts back. The face is usecases.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, replace

from swarm_deploy import commands, gate, pipeline, sources
from swarm_deploy.config import Branch, Config
from swarm_deploy.deploy import Deployer, read_facts
from swarm_deploy.engine import Executor
from swarm_deploy.errors import ConfigError, RollbackError, named
from swarm_deploy.lock import SwarmLock
from swarm_deploy.naming import label
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import Facts, Plan
from swarm_deploy.render import Release
from swarm_deploy.runner import Reporter
from swarm_deploy.usecases_plan import (
    LOCK_WAIT,
    PlanRequest,
    deployed_at,
    open_swarm,
    plan_for,
    subject,
)


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


# what is shown of the plan a deploy made from the target, before it runs
Decided = Callable[[Plan], None]


def _unshown(_: Plan) -> None:
    pass


def deploy(
    request: DeployRequest,
    reporter: Reporter,
    clock: gate.Clock = gate.Clock(),
    decided: Decided = _unshown,
) -> Outcome:
    """Build (or take `images`), publish and deploy a release of the branch blue/green.
    Every secret is read, and the branch's lock taken, before anything changes; `decided`
    sees the plan before it runs."""
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
    return _deploy(asked, request.lock_wait, reporter, clock, decided)


def rollback(
    request: RollbackRequest,
    reporter: Reporter,
    clock: gate.Clock = gate.Clock(),
    decided: Decided = _unshown,
) -> Outcome:
    """Put the release before the live one back, by its recorded digests, through the
    same gate and switch; `decided` sees the plan before it runs."""
    asked = PlanRequest(
        request.project, request.branch, "", request.host, request.environ,
        deployed_by=request.actor, rollback=True,
        update_shared=request.update_shared,
    )  # fmt: skip
    with named(RollbackError):
        return _deploy(asked, request.lock_wait, reporter, clock, decided)


def _deploy(
    asked: PlanRequest, lock_wait: float, reporter: Reporter, clock: gate.Clock, decided: Decided
) -> Outcome:
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
    swarm = open_swarm(config, resolved.target)
    with closing(swarm):
        swarm.require_manager()
        executor.reach_through(swarm)
        lock = SwarmLock.of_branch(
            executor, swarm, config, branch.name, asked.deployed_by, action, clock
        )
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
            the_plan = plan_for(resolved, asked)
            decided(the_plan)
            if not the_plan.up_to_date:
                Deployer(
                    project, the_plan, resolved.secrets, executor, swarm, reporter,
                    lock.shared(config), lock_wait, lease, clock,
                ).deploy()  # fmt: skip
            return Outcome(the_plan, tuple(notes))


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
