"""The commands that act on what a target holds besides a deploy: destroy, the stale
branches, status and unlock. The face is usecases.py."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime

from swarm_deploy import facts, gate
from swarm_deploy import status as status_module
from swarm_deploy.destroy import (
    deployed_branches,
    destroy_plan,
    read_remains,
    refuse_protected,
    stale,
)
from swarm_deploy.engine import Executor
from swarm_deploy.errors import DestroyError, LockError, UnlockError, named
from swarm_deploy.lock import SwarmLock
from swarm_deploy.lock import unlock as free
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import Step
from swarm_deploy.runner import Reporter, Runner
from swarm_deploy.status import BranchStatus, ServiceHealth
from swarm_deploy.usecases_plan import LOCK_WAIT, open_swarm, target

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


def destroy(
    request: DestroyRequest, reporter: Reporter, clock: gate.Clock = gate.Clock()
) -> Destroyed:
    """Remove what the target holds of one branch, under the branch's lock; every wait
    (the locks, the jobs, stacks going) on `clock`."""
    config = request.project.config
    where = target(config, request.host)
    name = request.branch
    names = config.names(name)
    rule = refuse_protected(config, name, request.force)
    swarm = open_swarm(config, where)
    with closing(swarm):
        swarm.require_manager()
        if request.dry_run:
            remains = read_remains(swarm, config, names)
            return Destroyed(
                name, where, destroy_plan(config, names, where, remains, request.drop_data)
            )
        executor = Executor(config.root)
        executor.reach_through(swarm)
        lock = SwarmLock.of_branch(
            executor, swarm, config, name, request.actor, f"destroy of {name}", clock
        )
        with lock.held(request.lock_wait, reporter) as lease:
            remains = read_remains(swarm, config, names)
            steps = destroy_plan(config, names, where, remains, request.drop_data)
            if steps and rule is None:
                reporter.note(f"no rule allows {name} any more: removing what it left on {where}")
            # the data jobs log in with the shared admin secrets: not while one rotates
            runner = Runner(executor, swarm, reporter, clock, fence=lease.check)
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
    swarm = open_swarm(config, target(config, request.host))
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
    swarm = open_swarm(config, where)
    with closing(swarm):
        executor = Executor(config.root)
        executor.reach_through(swarm)
        branches, shared = status_module.read(swarm, executor, config)
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
    swarm = open_swarm(config, target(config, request.host))
    with closing(swarm):
        swarm.require_manager()
        executor = Executor(config.root)
        executor.reach_through(swarm)
        lock = (
            SwarmLock.of_branch(executor, swarm, config, request.branch, "", "unlock")
            if request.branch is not None
            else SwarmLock.of_shared(executor, swarm, config, "", "unlock")
        )
        with named(UnlockError, LockError):
            return free(lock)
