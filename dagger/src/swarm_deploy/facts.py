"""What the target holds, as typed values: the one reader of the Engine API's JSON.

One parser per Engine object (a service, a task, a node, a secret or config) and one
small read per fact, in the way of pyinfra's facts: engine.Swarm fetches, this module
looks inside what it fetched, and everything else works on the values it returns.
tests/unit/test_facts.py fails when another module reads the JSON itself.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from swarm_deploy.claims import OtherBranch, RunningShared
from swarm_deploy.config import Config
from swarm_deploy.engine import Json, Swarm, SwarmApi, parse_time
from swarm_deploy.errors import BranchError, TargetError
from swarm_deploy.naming import STACK_NAMESPACE, label
from swarm_deploy.truth import ColourStack


def _labels(raw: Json | None) -> Mapping[str, str]:
    return MappingProxyType(dict((raw or {}).get("Labels") or {}))


@dataclass(frozen=True)
class Service:
    """A service as the Engine reports it; `replicas` is None unless it is replicated
    (a global service or a job); `running`/`desired` are its task counts."""

    id: str
    name: str
    labels: Mapping[str, str]
    image: str
    replicas: int | None
    running: int
    desired: int
    created_at: datetime
    updated_at: datetime
    update_state: str | None
    update_message: str | None
    secrets: frozenset[str]
    ports: tuple[int, ...]

    @property
    def settled(self) -> bool:
        """No update under way or in trouble (its last one completed, or none), and every
        task it wants running."""
        return self.update_state in (None, "completed") and self.running >= self.desired

    @classmethod
    def parse(cls, raw: Json) -> Service:
        spec = raw["Spec"]
        container = spec["TaskTemplate"]["ContainerSpec"]
        replicated = (spec.get("Mode") or {}).get("Replicated")
        update = raw.get("UpdateStatus") or {}
        counts = raw.get("ServiceStatus") or {}
        ports = (raw.get("Endpoint") or {}).get("Spec", {}).get("Ports") or []
        return cls(
            id=raw["ID"],
            name=spec["Name"],
            labels=_labels(spec),
            image=container["Image"],
            replicas=None if replicated is None else replicated.get("Replicas", 0),
            running=counts.get("RunningTasks", 0),
            desired=counts.get("DesiredTasks", 0),
            created_at=parse_time(raw["CreatedAt"]),
            updated_at=parse_time(raw["UpdatedAt"]),
            update_state=update.get("State"),
            update_message=update.get("Message"),
            secrets=frozenset(s["SecretName"] for s in container.get("Secrets") or []),
            ports=tuple(p["PublishedPort"] for p in ports if p.get("PublishedPort")),
        )


@dataclass(frozen=True)
class Task:
    """One task of a service: where it runs, its state and the state Swarm wants."""

    id: str
    service_id: str
    slot: int | None
    node_id: str
    state: str
    desired_state: str
    created_at: datetime
    error: str | None = None
    message: str | None = None
    exit_code: int | None = None
    container_id: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running" and self.desired_state == "running"

    @classmethod
    def parse(cls, raw: Json) -> Task:
        status = raw.get("Status") or {}
        container = status.get("ContainerStatus") or {}
        return cls(
            id=raw["ID"],
            service_id=raw.get("ServiceID", ""),
            slot=raw.get("Slot"),
            node_id=raw.get("NodeID", ""),
            state=status.get("State", "?"),
            desired_state=raw.get("DesiredState", "?"),
            created_at=parse_time(raw["CreatedAt"]),
            error=status.get("Err"),
            message=status.get("Message"),
            exit_code=container.get("ExitCode"),
            container_id=container.get("ContainerID"),
        )


@dataclass(frozen=True)
class Node:
    """A node of the swarm; `labels` are its own (`docker node update --label-add`), which
    placement constraints read; `role` is manager or worker."""

    id: str
    hostname: str
    address: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    role: str = ""
    availability: str = ""

    @classmethod
    def parse(cls, raw: Json) -> Node:
        spec = raw.get("Spec") or {}
        return cls(
            raw["ID"],
            raw["Description"]["Hostname"],
            raw["Status"]["Addr"],
            _labels(spec),
            spec.get("Role", ""),
            spec.get("Availability", ""),
        )


@dataclass(frozen=True)
class Engine:
    """The engine the client talks to, from `/version` and `/info`: its version, where it
    keeps images and volumes, and its host's memory and kernel release."""

    version: str
    docker_root: str
    memory: int
    kernel: str = ""

    @classmethod
    def parse(cls, version: Json, info: Json) -> Engine:
        return cls(
            version.get("Version", "?"),
            info.get("DockerRootDir") or "/var/lib/docker",
            int(info.get("MemTotal") or 0),
            info.get("KernelVersion", ""),
        )


@dataclass(frozen=True)
class Stored:
    """A secret or a config: its name and labels; a config's data too (a secret's is
    never given out)."""

    id: str
    name: str
    labels: Mapping[str, str]
    created_at: datetime
    updated_at: datetime
    data: bytes = b""

    @classmethod
    def parse(cls, raw: Json) -> Stored:
        spec = raw["Spec"]
        try:
            data = base64.b64decode(spec.get("Data") or "")
        except (binascii.Error, ValueError):
            data = b""
        created = parse_time(raw["CreatedAt"])
        updated = raw.get("UpdatedAt")
        return cls(
            raw["ID"],
            spec["Name"],
            _labels(spec),
            created,
            parse_time(updated) if updated else created,
            data,
        )


# --- reads


def services(swarm: SwarmApi, labels: Mapping[str, str]) -> list[Service]:
    """Services whose labels include all of `labels`."""
    return [Service.parse(raw) for raw in swarm.services(labels)]


def stack(swarm: SwarmApi, name: str) -> list[Service]:
    """The services of a stack."""
    return services(swarm, {STACK_NAMESPACE: name})


def service(swarm: SwarmApi, name: str) -> Service | None:
    raw = swarm.service(name)
    return None if raw is None else Service.parse(raw)


def drain_of(swarm: SwarmApi, job: str) -> str | None:
    """While the drain job `job` a deploy handed off (actions.HandOffDrain) is on the
    Swarm, the colour stack it is to remove ("" if its label is gone); else None."""
    found = service(swarm, job)
    return None if found is None else found.labels.get(label("drain-of"), "")


def job_tasks(swarm: SwarmApi, job: str) -> list[Task] | None:
    """The tasks of the one-shot job `job`; None once it is gone, also when it removed
    itself between the two reads (the Engine API then answers 404 for its tasks)."""
    found = service(swarm, job)
    if found is None:
        return None
    try:
        return tasks(swarm, [found.id])
    except TargetError:
        if service(swarm, job) is None:
            return None
        raise


def tasks(swarm: SwarmApi, service_ids: Sequence[str]) -> list[Task]:
    return [Task.parse(raw) for raw in swarm.tasks(service_ids)]


def tasks_of(swarm: SwarmApi, found: Sequence[Service]) -> list[Task]:
    return tasks(swarm, [s.id for s in found])


def secrets(swarm: SwarmApi, labels: Mapping[str, str]) -> list[Stored]:
    return [Stored.parse(raw) for raw in swarm.secrets(labels)]


def configs(swarm: SwarmApi, labels: Mapping[str, str]) -> list[Stored]:
    return [Stored.parse(raw) for raw in swarm.configs(labels)]


def config(swarm: SwarmApi, name: str) -> Stored | None:
    raw = swarm.config(name)
    return None if raw is None else Stored.parse(raw)


def nodes(swarm: SwarmApi) -> list[Node]:
    return [Node.parse(raw) for raw in swarm.nodes()]


def node(swarm: SwarmApi, node_id: str) -> Node:
    return Node.parse(swarm.node(node_id))


def engine(swarm: Swarm) -> Engine:
    return Engine.parse(swarm.version(), swarm.info)


def local_node(swarm: SwarmApi) -> str | None:
    """The ID of the node the client talks to."""
    node_id: str | None = swarm.info.get("Swarm", {}).get("NodeID")
    return node_id


def edges(swarm: SwarmApi, app: str) -> list[Service]:
    """The edge (nginx) service of each branch of the app on the target."""
    return services(swarm, {label("app"): app, label("service"): "nginx"})


# --- what the services say


def colour_stack(config: Config, found: Sequence[Service]) -> ColourStack | None:
    """A colour's stack as it runs (None when it has no service)."""
    if not found:
        return None
    by_name = {s.labels.get(label("service")): s for s in found}
    release = next(iter(by_name.values())).labels.get(label("release"))
    images = {
        service.image: by_name[name].image
        for name, service in config.services.items()
        if name in by_name
    }
    singletons = {
        name: s.replicas or 0
        for name, s in by_name.items()
        if name and s.labels.get(label("singleton")) == "true"
    }
    return ColourStack(release, images, singletons)


def other_branch(config: Config, edge: Service) -> OtherBranch:
    """Another branch, from its edge service's labels; one deployed before its host was
    recorded gets the host this config's rules give it."""
    name = edge.labels.get(label("branch"), "")
    host = edge.labels.get(label("host"))
    if host is None:
        try:
            host = config.branch(name).host
        except BranchError:
            host = None
    uses = edge.labels.get(label("uses"))
    return OtherBranch(
        name, host, None if uses is None else frozenset(filter(None, uses.split(",")))
    )


def running_shared(swarm: SwarmApi, config: Config) -> dict[str, RunningShared]:
    """The shared stack's services by kind, as they run."""
    prefix = config.shared_names.service("")
    return {
        s.name.removeprefix(prefix): RunningShared(
            s.labels.get(label("definition")), s.image.split("@", 1)[0], s.secrets, s.id, s.settled
        )
        for s in stack(swarm, config.shared_names.stack)
    }
