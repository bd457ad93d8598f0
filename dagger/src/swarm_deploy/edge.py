"""The branch's nginx as it runs: where its task is, what it serves, which colour its
live/ directory names, and each colour's stack: what truth.reconcile weighs. Reads only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from swarm_deploy import commands, facts
from swarm_deploy.config import Config
from swarm_deploy.engine import ArgvRunner, SwarmApi
from swarm_deploy.errors import TargetError
from swarm_deploy.naming import COLOURS, LIVE_DIR, BranchNames, label
from swarm_deploy.truth import Observed, Replica, Truth, reconcile

PREVIEW = "http://127.0.0.1:8081"
PUBLIC = "http://127.0.0.1"
COLOUR_HEADER = "X-Swarm-Deploy-Colour"
STATIC_LABELS = frozenset(label(key) for key in ("app", "branch", "slug", "service"))


def state_of(edge: facts.Service | None) -> dict[str, str]:
    """The labels a deploy recorded on the edge service."""
    labels = edge.labels if edge is not None else {}
    return {
        key: value
        for key, value in labels.items()
        if key.startswith(label("")) and key not in STATIC_LABELS
    }


@dataclass(frozen=True)
class EdgeTask:
    """A running nginx task of a branch: its container, the engine that can exec in it,
    and its task name (service.slot, as `docker service ps` shows it)."""

    target: str
    container: str
    name: str


def edge_tasks(swarm: SwarmApi, edge_service: str) -> list[EdgeTask]:
    """Every running nginx task of the branch, by slot. `docker exec` reaches only
    containers of the engine it talks to, so a task on another node is reached over ssh
    to that node's address, with the user and port of the target."""
    service = facts.service(swarm, edge_service)
    if service is None:
        raise TargetError(f"{edge_service} does not exist on {swarm.target}")
    running = sorted(
        (t for t in facts.tasks(swarm, [service.id]) if t.running and t.container_id),
        key=lambda t: t.slot or 0,
    )
    if not running:
        raise TargetError(f"{edge_service} has no running task on {swarm.target}")
    local = facts.local_node(swarm)
    return [
        EdgeTask(
            swarm.target if task.node_id == local else node_target(swarm, task.node_id),
            task.container_id or "",
            f"{edge_service}.{task.slot}",
        )
        for task in running
    ]


def edge_task(swarm: SwarmApi, edge_service: str) -> EdgeTask:
    """One running nginx task of the branch (the first by slot): what runs behind one
    serves the same colour as behind any other, once a switch has reached them all."""
    return edge_tasks(swarm, edge_service)[0]


def node_target(swarm: SwarmApi, node_id: str) -> str:
    """ssh://user@<node address>:port, from the target's user and port."""
    node = facts.node(swarm, node_id)
    address, hostname = node.address, node.hostname
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


def probe_path(config: Config) -> str | None:
    """A path every colour routes: the first routed service's health path, or its path."""
    routed = [s for s in config.services.values() if s.routed]
    return (routed[0].health or routed[0].path) if routed else None


def read_nginx(executor: ArgvRunner, edge: EdgeTask, path: str | None) -> Replica:
    """What one nginx task serves on `path` (None: not asked) and which colour its live/
    names, in one `docker exec` (commands.READ_SCRIPT). Raises TargetError when nginx
    gives no answer on `path`."""
    url = PUBLIC + path if path is not None else None
    result = executor.run(
        commands.read_live(edge.target, edge.container, LIVE_DIR, url), check=False
    )
    headers, _, named = result.stdout.partition(f"--- {LIVE_DIR}\n")
    if path is not None and not headers.startswith("HTTP/"):
        raise TargetError(f"nginx in {edge.container} gave no answer on {path}")
    served = re.search(rf"^{COLOUR_HEADER}: (blue|green)\b", headers, re.I | re.M)
    return Replica(served.group(1) if served else None, named if named in COLOURS else None)


def observe(swarm: SwarmApi, executor: ArgvRunner, config: Config, names: BranchNames) -> Observed:
    """Everything truth.reconcile weighs: the edge's labels, what each nginx task serves
    and its live/ names (when they answer), and each colour's stack."""
    stacks = {
        colour: stack
        for colour in COLOURS
        if (stack := facts.colour_stack(config, facts.stack(swarm, names.colour_stack(colour))))
    }
    edge = facts.service(swarm, names.edge_service)
    if edge is None:
        return Observed({}, stacks)
    labels = state_of(edge)
    path = probe_path(config)
    try:
        replicas = {
            task.name: read_nginx(executor, task, path)
            for task in edge_tasks(swarm, names.edge_service)
        }
    except TargetError:
        return Observed(labels, stacks)
    first = next(iter(replicas.values()))
    return Observed(labels, stacks, path is not None, first.served, first.named, replicas)


def live(
    swarm: SwarmApi, executor: ArgvRunner, config: Config, names: BranchNames
) -> tuple[Observed, Truth]:
    """The branch's live colour by the one rule deploy, rollback and status share
    (truth.reconcile: what nginx serves wins), and what it was decided from."""
    observed = observe(swarm, executor, config, names)
    return observed, reconcile(observed)
