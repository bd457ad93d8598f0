"""What a deploy may claim on a target other branches share: its host name, and changes
to the shared stack. Pure: facts in, a refusal (an exception) or nothing out.

- A host is one branch's: a branch is refused the host another live branch holds.
- The shared stack changes only from a branch whose rule says `shared: true` (the
  production rule by default) or with `--update-shared`; any other branch whose shared
  stack renders differently from what runs is refused before any change, with the
  difference shown. Creating the stack where none runs is no change to anyone.
- A shared service another branch still uses is never removed, whoever deploys.
- A shared secret whose value differs from the one its service runs with is rotated
  only with `--update-shared`, whoever deploys.

What runs is read from labels: each shared service carries the hash of its rendered
definition (`swarm-deploy.definition`), each branch's edge the host it serves and the
shared services it uses (recorded with its live colour).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from swarm_deploy.config import Branch, Config
from swarm_deploy.datakinds import KINDS
from swarm_deploy.errors import HostConflictError, SharedStackError
from swarm_deploy.render import relayed_kinds

# What a branch may depend on in the shared stack: its data, and Traefik's routing.
DEPENDABLE = (*KINDS, "traefik")


@dataclass(frozen=True)
class OtherBranch:
    """Another branch of the app on the target, as its edge service's labels tell."""

    name: str
    host: str | None
    # None: deployed by a version that did not record it; then it may use anything
    uses: frozenset[str] | None


@dataclass(frozen=True)
class RunningShared:
    """A service of the shared stack as it runs: its definition's hash (None when it was
    deployed before hashes were recorded), its image without a pinned digest, the Swarm
    secrets it mounts (their names carry their values' hashes), its service ID (another
    one: the service was removed and created again), and whether it is settled (no update
    under way or in trouble, every task it wants running: a moment's state, which two
    looks at the same service may disagree on)."""

    definition: str | None
    image: str
    secrets: frozenset[str] = frozenset()
    id: str = ""
    settled: bool = field(default=True, compare=False)


def uses(config: Config) -> tuple[str, ...]:
    """The shared services a branch of this config depends on to serve."""
    kinds = {kind for kind, _ in relayed_kinds(config)}
    kinds |= {"traefik"} & set(config.shared)
    return tuple(kind for kind in DEPENDABLE if kind in kinds)


def check_host(branch: Branch, others: Sequence[OtherBranch], target: str) -> None:
    for other in others:
        if other.host == branch.host and other.name != branch.name:
            raise HostConflictError(
                f"branch {branch.name!r} would be served at {branch.host}, which branch "
                f"{other.name!r} holds on {target}; remove that branch first (`swarm-deploy "
                f"destroy --branch {other.name}`) or give rule '{branch.rule.match}' another host"
            )


def shared_changes(
    config: Config, definitions: Mapping[str, str], running: Mapping[str, RunningShared]
) -> list[str]:
    """How the rendered shared stack differs from what runs, one line per service. A
    service deployed before definitions were recorded is compared by image only."""
    changes = []
    for kind in sorted(set(definitions) | set(running)):
        now = running.get(kind)
        if now is None:
            changes.append(f"{kind}: added ({config.shared[kind].image})")
        elif kind not in definitions:
            changes.append(f"{kind}: removed (runs {now.image})")
        elif now.image != config.shared[kind].image:
            changes.append(f"{kind}: image {now.image} -> {config.shared[kind].image}")
        elif now.definition not in (None, definitions[kind]):
            changes.append(f"{kind}: definition changed (same image)")
    return changes


def rotated_secrets(
    config: Config, names: Mapping[str, str], running: Mapping[str, RunningShared]
) -> dict[str, str]:
    """The shared secrets whose value differs from the one their service runs with, key
    -> kind. `names`: each shared secret's Swarm name as this deploy has it (it carries
    the hash of the value this deploy read)."""
    rotated = {}
    for kind, service in config.shared.items():
        key = service.admin_password
        now = running.get(kind)
        if key is None or key not in names or now is None or not now.secrets:
            continue
        if names[key] not in now.secrets:
            rotated[key] = kind
    return rotated


def changed_since(
    planned: Mapping[str, RunningShared], running: Mapping[str, RunningShared]
) -> list[str]:
    """How the shared stack changed between two looks at it, one line per service."""
    lines = []
    for kind in sorted(set(planned) | set(running)):
        before, now = planned.get(kind), running.get(kind)
        if before == now:
            continue
        if before is None and now is not None:
            lines.append(f"{kind}: added (runs {now.image})")
        elif now is None:
            lines.append(f"{kind}: removed")
        elif before is not None and before.image != now.image:
            lines.append(f"{kind}: image {before.image} -> {now.image}")
        elif before is not None and before.secrets != now.secrets:
            lines.append(f"{kind}: runs with other secrets (a shared secret was rotated)")
        elif before is not None and before.id != now.id:
            lines.append(f"{kind}: removed and created again")
        else:
            lines.append(f"{kind}: definition changed")
    return lines


def check_shared(
    config: Config,
    branch: Branch,
    definitions: Mapping[str, str],
    running: Mapping[str, RunningShared],
    others: Sequence[OtherBranch],
    update_shared: bool,
    secret_names: Mapping[str, str] | None = None,
) -> list[str]:
    """The changes this deploy makes to the shared stack; raises when it may not.

    `secret_names`: the shared secrets' Swarm names as this deploy has them. A secret
    whose value differs from what runs is rotated only with --update-shared, whatever
    the branch's rule: secret values come from the deployer's environment, not from git,
    so a stale checkout of any branch would otherwise rotate it for every branch."""
    if not running:
        return []
    stack = config.shared_names.stack
    rotated = rotated_secrets(config, secret_names or {}, running)
    if rotated and not update_shared:
        listed = "\n".join(
            f"  {key}: the value from {config.secrets[key].describe()} is not the one {kind} "
            "runs with"
            for key, kind in rotated.items()
        )
        raise SharedStackError(
            f"deploying {branch.name!r} would rotate shared secrets of {stack} for every "
            f"branch (and every branch's credentials derived from them):\n{listed}\n"
            "next: if this deploy's value is stale, give it the value the target runs "
            "with; to rotate on purpose, pass --update-shared"
        )
    removed = sorted(set(running) - set(definitions))
    holders = {
        kind: [o.name for o in others if o.name != branch.name and kind in (o.uses or DEPENDABLE)]
        for kind in removed
    }
    in_use = {kind: names for kind, names in holders.items() if names}
    if in_use:
        shown = "; ".join(f"{kind} by {', '.join(names)}" for kind, names in in_use.items())
        raise SharedStackError(
            f"this deploy would remove from {stack} what other branches still use: {shown}; "
            "keep those services in shared: until no branch uses them (`swarm-deploy destroy` "
            "the branches, or deploy them without the service)"
        )
    changes = shared_changes(config, definitions, running) + [
        f"secret {key}: rotated ({kind} runs with another value; every branch's credentials "
        "derived from it follow at their next deploy)"
        for key, kind in rotated.items()
    ]
    if changes and not (branch.rule.shared or update_shared):
        owners = [f"'{rule.match}'" for rule in config.branches if rule.shared]
        who = f"branches of rule {' or '.join(owners)}" if owners else "no branch rule"
        listed = "\n".join(f"  {change}" for change in changes)
        raise SharedStackError(
            f"{stack} runs differently from what branch {branch.name!r} would deploy, and "
            f"{who} may change it (shared: true):\n{listed}\n"
            "next: deploy this change from such a branch, make this branch's shared: match "
            "what runs, or pass --update-shared to change it for every branch"
        )
    return changes
