"""Removing a branch from the target: its stacks, network, secrets and edge volume, and
with --drop-data its databases and role, its Redis keys and user. Safe to rerun: what is
gone is skipped. Other branches and the shared stack are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from swarm_deploy import commands
from swarm_deploy.config import Branch, Config
from swarm_deploy.engine import Executor, Json, Swarm
from swarm_deploy.errors import BranchNotAllowedError, TargetError
from swarm_deploy.gate import parse_time
from swarm_deploy.plan import LABEL, RemoveIfPresent, Step, WaitGone, data_job, run
from swarm_deploy.runner import Reporter, Runner

STOP_TIMEOUT = 90.0


@dataclass(frozen=True)
class Remains:
    """What the target holds of a branch; `admin_secrets`: the shared data services' admin
    secrets on the target (the newest of each), by kind."""

    stacks: tuple[str, ...]
    secrets: tuple[str, ...]
    admin_secrets: Mapping[str, str] = field(default_factory=dict)


def read_remains(swarm: Swarm, config: Config, branch: Branch) -> Remains:
    names = branch.names
    candidates = (names.colour_stack("blue"), names.colour_stack("green"), names.edge_stack)
    stacks = tuple(stack for stack in candidates if swarm.stack_services(stack))
    secrets = tuple(
        s["Spec"]["Name"]
        for s in swarm.secrets({f"{LABEL}.app": config.app, f"{LABEL}.slug": branch.slug})
    )
    admins = {}
    for kind in commands.DATA_ACCESS:
        service = config.shared.get(kind)
        if service is None or service.admin_password is None:
            continue
        labels = {f"{LABEL}.app": config.app, f"{LABEL}.key": service.admin_password}
        found = [
            s for s in swarm.secrets(labels) if s["Spec"]["Labels"].get(f"{LABEL}.slug") == "shared"
        ]
        if found:
            admins[kind] = max(found, key=lambda s: s["CreatedAt"])["Spec"]["Name"]
    return Remains(stacks, secrets, admins)


def destroy_plan(
    config: Config, branch: Branch, target: str, remains: Remains, drop_data: bool
) -> list[Step]:
    """Colours first (they use the branch network), then the edge that owns it."""
    names = branch.names
    colours = tuple(s for s in remains.stacks if s != names.edge_stack)
    steps = []
    if colours:
        steps.append(Step("stacks", f"remove {', '.join(colours)}", (
            *(run(commands.stack_rm(target, stack)) for stack in colours),
            WaitGone(target, colours, STOP_TIMEOUT),
        )))  # fmt: skip
    if names.edge_stack in remains.stacks:
        steps.append(Step("stacks", f"remove {names.edge_stack}", (
            run(commands.stack_rm(target, names.edge_stack)),
            WaitGone(target, (names.edge_stack,), STOP_TIMEOUT),
        )))  # fmt: skip
    steps.append(Step("network", f"remove the network {names.network}", (
        RemoveIfPresent(target, "network", (names.network,)),
        RemoveIfPresent(target, "volume", (names.live_volume,)),
    ), "the volume is on the node this deploy talks to"))  # fmt: skip
    if remains.secrets:
        steps.append(Step("secrets", f"remove {len(remains.secrets)} secrets of {branch.slug}", (
            RemoveIfPresent(target, "secret", remains.secrets),
        )))  # fmt: skip
    if drop_data:
        steps += _drop_data_steps(config, branch, target, remains)
    return steps


def _drop_data_steps(config: Config, branch: Branch, target: str, remains: Remains) -> list[Step]:
    missing = [
        kind
        for kind in commands.DATA_ACCESS
        if kind in config.shared and kind not in remains.admin_secrets
    ]
    if missing:
        raise TargetError(
            f"--drop-data: the admin secret of the shared {', '.join(missing)} is not on the "
            "target, so the branch's data cannot be dropped; is the shared stack deployed?"
        )
    titles = {
        "postgres": f"drop the databases and role of {branch.slug}",
        "redis": f"drop the Redis keys {branch.names.redis_prefix}* and user",
    }
    jobs = {
        kind: data_job(config, branch, target, kind, access.drop, remains.admin_secrets[kind])
        for kind, access in commands.DATA_ACCESS.items()
        if kind in config.shared
    }
    return [Step("data", titles[kind], (job,)) for kind, job in jobs.items()]


@dataclass(frozen=True)
class Deployed:
    branch: str
    deployed_at: datetime | None


def deployed_branches(edges: Sequence[Json]) -> list[Deployed]:
    """The branches an app has on the target, from their edge services' labels."""
    found = []
    for edge in edges:
        labels = edge["Spec"].get("Labels") or {}
        stamp = labels.get(f"{LABEL}.deployed-at")
        found.append(
            Deployed(labels.get(f"{LABEL}.branch", ""), parse_time(stamp) if stamp else None)
        )
    return sorted(found, key=lambda d: d.branch)


def stale(config: Config, deployed: Sequence[Deployed], days: float, now: datetime) -> list[str]:
    """Branches not deployed for `days`, except those the config protects."""
    cutoff = now - timedelta(days=days)
    result = []
    for item in deployed:
        try:
            protected = config.branch(item.branch).rule.protected
        except BranchNotAllowedError:
            protected = False  # its rule is gone from the config: nothing protects it
        if not protected and (item.deployed_at is None or item.deployed_at < cutoff):
            result.append(item.branch)
    return result


def destroy_branch(
    config: Config,
    branch_name: str,
    reporter: Reporter,
    *,
    target: str | None = None,
    drop_data: bool = False,
    dry_run: bool = False,
) -> list[Step]:
    """Remove one branch; returns the steps (only listed, with `dry_run`)."""
    branch = config.branch(branch_name)
    target = target or config.target
    swarm = Swarm(target)
    try:
        swarm.require_manager()
        steps = destroy_plan(config, branch, target, read_remains(swarm, config, branch), drop_data)
        if not dry_run:
            Runner(Executor(config.root), swarm, reporter).run(steps)
        return steps
    finally:
        swarm.close()


def stale_on_target(config: Config, days: float, target: str | None = None) -> list[str]:
    swarm = Swarm(target or config.target)
    try:
        edges = swarm.services({f"{LABEL}.app": config.app, f"{LABEL}.service": "nginx"})
    finally:
        swarm.close()
    return stale(config, deployed_branches(edges), days, datetime.now(UTC))
