"""Removing a branch from the target: its stacks, network, secrets and edge volume, and
with --drop-data its PostgreSQL databases and role, its MongoDB databases and user, its
Redis keys and user. Safe to rerun: what is
gone is skipped. Other branches and the shared stack are never touched.

What is removed is what the target holds, found by the names the branch's slug gives:
a branch whose rule was dropped after it was deployed is removed all the same, and a
branch that left nothing there (never deployable, never deployed) has nothing to remove.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from swarm_deploy import commands, facts
from swarm_deploy.config import BranchRule, Config
from swarm_deploy.datakinds import KINDS
from swarm_deploy.engine import SwarmApi, parse_time
from swarm_deploy.errors import BranchError, TargetError
from swarm_deploy.naming import COLOURS, DRAIN_JOB, BranchNames, label
from swarm_deploy.plan import (
    Phase,
    RemoveIfPresent,
    Step,
    WaitGone,
    data_job,
    data_title,
    run,
)

STOP_TIMEOUT = 90.0


@dataclass(frozen=True)
class Remains:
    """What the target holds of a branch; `admin_secrets`: the shared data services' admin
    secrets on the target (the newest of each), by kind; `volumes`: the edge's volume, on
    the node the deploy talks to."""

    stacks: tuple[str, ...]
    secrets: tuple[str, ...]
    admin_secrets: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ()
    # the drain job a deploy handed off, while it is on the Swarm (actions.HandOffDrain)
    drain_job: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.stacks or self.secrets or self.volumes or self.drain_job)


def read_remains(swarm: SwarmApi, config: Config, names: BranchNames) -> Remains:
    candidates = (*(names.colour_stack(colour) for colour in COLOURS), names.edge_stack)
    stacks = tuple(stack for stack in candidates if facts.stack(swarm, stack))
    secrets = tuple(s.name for s in facts.secrets(swarm, names.owner_labels))
    volume = names.live_volume
    volumes = (volume,) if swarm.volume(volume) is not None else ()
    admins = {}
    for kind in KINDS:
        service = config.shared.get(kind)
        if service is None or service.admin_password is None:
            continue
        labels = {label("app"): config.app, label("key"): service.admin_password}
        found = [s for s in facts.secrets(swarm, labels) if s.labels.get(label("slug")) == "shared"]
        if found:
            admins[kind] = max(found, key=lambda s: s.created_at).name
    drain = names.job(DRAIN_JOB)
    drain_job = None if facts.drain_of(swarm, drain) is None else drain
    return Remains(stacks, secrets, admins, volumes, drain_job)


def destroy_plan(
    config: Config, names: BranchNames, target: str, remains: Remains, drop_data: bool
) -> list[Step]:
    """Colours first (they use the branch network), then the edge that owns it; nothing
    when the target holds nothing of the branch and its data stays."""
    if remains.empty and not drop_data:
        return []
    colours = tuple(s for s in remains.stacks if s != names.edge_stack)
    steps = []
    if remains.drain_job:
        steps.append(Step(Phase.STACKS, f"stop {remains.drain_job}, the last deploy's drain", (
            RemoveIfPresent(target, "service", (remains.drain_job,)),
        ), "what it was to remove goes with the colours"))  # fmt: skip
    if colours:
        steps.append(Step(Phase.STACKS, f"remove {', '.join(colours)}", (
            *(run(commands.stack_rm(target, stack)) for stack in colours),
            WaitGone(target, colours, STOP_TIMEOUT),
        )))  # fmt: skip
    if names.edge_stack in remains.stacks:
        steps.append(Step(Phase.STACKS, f"remove {names.edge_stack}", (
            run(commands.stack_rm(target, names.edge_stack)),
            WaitGone(target, (names.edge_stack,), STOP_TIMEOUT),
        )))  # fmt: skip
    steps.append(Step(Phase.NETWORK, f"remove the network {names.network}", (
        RemoveIfPresent(target, "network", (names.network,)),
        RemoveIfPresent(target, "volume", (names.live_volume,)),
    ), "the volume is on the node this deploy talks to"))  # fmt: skip
    if remains.secrets:
        steps.append(Step(Phase.SECRETS, f"remove {len(remains.secrets)} secrets of {names.slug}", (
            RemoveIfPresent(target, "secret", remains.secrets),
        )))  # fmt: skip
    if drop_data:
        steps += _drop_data_steps(config, names, target, remains)
    return steps


def _drop_data_steps(
    config: Config, names: BranchNames, target: str, remains: Remains
) -> list[Step]:
    missing = [
        kind for kind in KINDS if kind in config.shared and kind not in remains.admin_secrets
    ]
    if missing:
        raise TargetError(
            f"--drop-data: the admin secret of the shared {', '.join(missing)} is not on the "
            "target, so the branch's data cannot be dropped; is the shared stack deployed?"
        )
    return [
        Step(
            Phase.DATA,
            data_title(kind.drop_title, config, names, kind),
            (data_job(config, names, target, kind, kind.drop, remains.admin_secrets[kind.name]),),
        )
        for kind in KINDS.values()
        if kind.name in config.shared
    ]


@dataclass(frozen=True)
class Deployed:
    branch: str
    deployed_at: datetime | None


def deployed_branches(edges: Sequence[facts.Service]) -> list[Deployed]:
    """The branches an app has on the target, from their edge services' labels."""
    found = []
    for edge in edges:
        stamp = edge.labels.get(label("deployed-at"))
        found.append(
            Deployed(edge.labels.get(label("branch"), ""), parse_time(stamp) if stamp else None)
        )
    return sorted(found, key=lambda d: d.branch)


def stale(config: Config, deployed: Sequence[Deployed], days: float, now: datetime) -> list[str]:
    """Branches not deployed for `days`, except those the config protects."""
    cutoff = now - timedelta(days=days)
    result = []
    for item in deployed:
        rule = config.rule(item.branch)  # a rule gone from the config protects nothing
        protected = rule is not None and rule.protected
        if not protected and (item.deployed_at is None or item.deployed_at < cutoff):
            result.append(item.branch)
    return result


def refuse_protected(config: Config, branch_name: str, force: bool) -> BranchRule | None:
    """The rule that allows the branch (None: no rule does); a protected one only with
    `force`."""
    rule = config.rule(branch_name)
    if rule is not None and rule.protected and not force:
        raise BranchError(
            f"branch {branch_name!r} is protected (rule '{rule.match}' in the config): "
            "destroy leaves it in place, also when its git branch is deleted; remove it "
            f"with `swarm-deploy destroy --branch {branch_name} --force`"
        )
    return rule
