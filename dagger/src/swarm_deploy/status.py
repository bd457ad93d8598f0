"""What runs on the target: every branch of an app, its live colour, release and health.

The live colour is decided as a deploy decides it (truth.reconcile: what nginx serves),
and what an interrupted deploy left behind is listed, with the command that repairs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from swarm_deploy import facts, gate
from swarm_deploy.config import Config
from swarm_deploy.edge import live as live_colour
from swarm_deploy.engine import ArgvRunner, SwarmApi, parse_time
from swarm_deploy.naming import DRAIN_JOB, label
from swarm_deploy.truth import leftovers


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    running: int
    desired: int
    nodes: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.running >= self.desired

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "running": self.running,
            "desired": self.desired,
            "nodes": list(self.nodes),
        }


@dataclass(frozen=True)
class BranchStatus:
    branch: str
    slug: str
    live_colour: str | None
    release: str | None
    deployed_at: str | None
    deployed_by: str | None
    images: dict[str, str]
    services: tuple[ServiceHealth, ...]
    ports: tuple[int, ...]
    # what disagrees with the desired state: `swarm-deploy deploy --branch B` repairs it
    problems: tuple[str, ...] = ()

    def age(self, now: datetime) -> str:
        if not self.deployed_at:
            return "-"
        # on the manager's clock; a label a skewed deployer once stamped is not "-40m"
        seconds = max(0.0, (now - parse_time(self.deployed_at)).total_seconds())
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds >= size:
                return f"{seconds / size:.0f}{unit}"
        return f"{seconds:.0f}s"

    def to_json(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "slug": self.slug,
            "live_colour": self.live_colour,
            "release": self.release,
            "deployed_at": self.deployed_at,
            "deployed_by": self.deployed_by,
            "images": self.images,
            "ports": list(self.ports),
            "services": [s.to_json() for s in self.services],
            "problems": list(self.problems),
        }


def health(
    swarm: SwarmApi, services: list[facts.Service], hostnames: Mapping[str, str]
) -> tuple[ServiceHealth, ...]:
    """Task counts of each service, and the nodes (by `hostnames`, node ID -> hostname)
    its running tasks are on."""
    tasks = facts.tasks_of(swarm, services)
    return tuple(
        ServiceHealth(
            service.name,
            service.running,
            service.desired,
            tuple(
                sorted(
                    hostnames.get(t.node_id, "?")
                    for t in tasks
                    if t.service_id == service.id and t.running
                )
            ),
        )
        for service in sorted(services, key=lambda s: s.name)
    )


def branch_status(
    swarm: SwarmApi,
    executor: ArgvRunner,
    config: Config,
    edge: facts.Service,
    hostnames: Mapping[str, str],
) -> BranchStatus:
    slug = edge.labels.get(label("slug"), "")
    name = edge.labels.get(label("branch"), slug)
    names = config.names(name)
    observed, truth = live_colour(swarm, executor, config, names)
    state = truth.state
    live = truth.live
    stack_services = facts.stack(swarm, names.colour_stack(live)) if live else []
    problems = list(truth.notes)
    # the old colour of a deploy that returned once live runs until its drain job removes
    # it; a job that failed removes nothing more
    job = names.job(DRAIN_JOB)
    draining = facts.drain_of(swarm, job)
    failed = None if draining is None else drain_failure(swarm, job)
    if failed:
        problems.append(f"drain job {job} failed ({failed}): it removes nothing more")
    problems += [
        f"{names.colour_stack(colour)} runs beside the live colour" for colour in
        leftovers(live, observed.stacks) if failed or names.colour_stack(colour) != draining
    ]  # fmt: skip
    if live is not None:
        problems += [
            f"singleton {service} runs {replicas} tasks, not 1"
            for service, replicas in sorted(observed.stacks[live].singletons.items())
            if replicas != 1
        ]
    image_prefix = label("image.")
    return BranchStatus(
        branch=name,
        slug=slug,
        live_colour=live,
        release=state.get(label("release")) if live else None,
        deployed_at=state.get(label("deployed-at")) or None,
        deployed_by=state.get(label("deployed-by")),
        images={
            k.removeprefix(image_prefix): v for k, v in state.items() if k.startswith(image_prefix)
        },
        services=health(swarm, [edge, *stack_services], hostnames),
        ports=edge.ports,
        problems=tuple(problems),
    )


def drain_failure(swarm: SwarmApi, job: str) -> str | None:
    """Why the handed-off drain job `job` stopped short (its failed task), if it did."""
    tasks = facts.job_tasks(swarm, job)
    return None if tasks is None else gate.judge_job(tasks).failure


def read(
    swarm: SwarmApi, executor: ArgvRunner, config: Config
) -> tuple[list[BranchStatus], tuple[ServiceHealth, ...]]:
    """Every branch of the app on the target (by its edge service), and the shared stack."""
    hostnames = {n.id: n.hostname for n in facts.nodes(swarm)}
    branches = sorted(
        (
            branch_status(swarm, executor, config, e, hostnames)
            for e in facts.edges(swarm, config.app)
        ),
        key=lambda b: b.branch,
    )
    shared = health(swarm, facts.stack(swarm, config.shared_names.stack), hostnames)
    return branches, shared
