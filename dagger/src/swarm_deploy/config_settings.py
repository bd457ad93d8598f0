"""The settings sections of swarm-deploy.yml: gate, timeouts, edge, lock, swarm, limits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from swarm_deploy import config_keys as keys
from swarm_deploy._reader import Node, describe, recorded, settle
from swarm_deploy.config_values import (
    SUBNET,
    image_reference,
    label_key,
    opt,
    positive_duration,
)


@dataclass(frozen=True)
class Gate:
    """When a new colour counts as healthy."""

    consecutive: int = 3
    interval: float = 0.25
    timeout: float = 120.0
    # failed probes are forgiven this long after the tasks run (probing starts at once)
    start_grace: float = 30.0


@dataclass(frozen=True)
class Timeouts:
    """How long each wait of a deploy besides the gate may take, each on its own."""

    shared_start: float = 120.0
    edge_start: float = 120.0
    data_jobs: float = 120.0
    migrate: float = 120.0


@dataclass(frozen=True)
class Edge:
    """The branch's nginx, where the blue/green switch happens."""

    image: str = "nginx:1.27.2-bookworm"
    relay_image: str = "haproxy:2.8.11-alpine"
    drain: float = 10.0
    public_subnet: str = "10.231.0.0/24"
    # tasks of each branch's nginx; None: Config.edge_replicas decides by the branch's rule
    replicas: int | None = None
    # how often Traefik asks each nginx task for /healthz, and how long it waits for it
    health_interval: float = 1.0
    health_timeout: float = 0.5
    # how many times Traefik tries a request on the nginx tasks when it could not send it
    # to one (its balancer may pick the dead task again: docs/request-path.md)
    retry_attempts: int = 4
    # how long Traefik tries to connect to an nginx task before the retry takes another:
    # its own default, 30 s, outlasts every client (docs/request-path.md)
    dial_timeout: float = 1.0


@dataclass(frozen=True)
class Lock:
    """The locks a command holds on the Swarm: a lock whose holder has sent no heartbeat
    for `stale_after` belongs to a command that is gone (lock.py)."""

    stale_after: float = 30.0


@dataclass(frozen=True)
class Limits:
    """How large and how slow a request may be: each rendered into every hop that bounds it."""

    body_size: int = 32 * 1024 * 1024
    read_timeout: int = 300
    idle_timeout: int = 180
    data_idle_timeout: int = 3600

    @property
    def proxy_idle_timeout(self) -> int:
        """Traefik drops an idle connection to an edge before nginx closes it, never after:
        a request sent on a connection the other end just closed fails (502)."""
        return self.idle_timeout // 2


@dataclass(frozen=True)
class SwarmSettings:
    """How services are reached: the defaults work without IPVS."""

    endpoint_mode: str = "dnsrr"
    publish_mode: str = "host"
    # node labels (set with `docker node update --label-add LABEL=true`): stateful shared
    # services run only where their volumes are, branch edges where their ports are expected
    data_node_label: str | None = None
    edge_node_label: str | None = None
    # the Docker socket on a manager, as a path on that host: over ssh:// the Engine API is
    # forwarded to it (engine.SshForward), and the drain job a deploy hands off talks to
    # the Engine through it (actions.HandOffDrain)
    docker_socket: str = "/var/run/docker.sock"


def read_gate(node: Node) -> Gate:
    fields = node.mapping(allowed=keys.GATE.allowed)
    start = recorded()
    default = Gate()
    gate = Gate(
        consecutive=opt(fields, "consecutive", lambda n: n.integer(1, 100), default.consecutive),
        interval=opt(fields, "interval", positive_duration, default.interval),
        timeout=opt(fields, "timeout", Node.duration, default.timeout),
        start_grace=opt(fields, "start_grace", Node.duration, default.start_grace),
    )
    settle(start)
    if gate.consecutive > 1 and gate.timeout <= _last_but_one_check(gate):
        seen = _last_but_one_check(gate)
        node.child("timeout", None).fail(
            f"{gate.timeout:g}s is too short for the gate ever to pass: "
            f"{gate.consecutive} checks every {gate.interval:g}s, the first as the tasks run, "
            f"put check {gate.consecutive - 1} at {seen:g}s at the earliest, and the gate "
            f"gives up after any check from {gate.timeout:g}s on, before check "
            f"{gate.consecutive}; raise it above {seen:g}s, or lower gate/interval or "
            "gate/consecutive"
        )
    return gate


def _last_but_one_check(gate: Gate) -> float:
    """When, at the earliest, the check before the gate's last needed one comes."""
    # EdgeRunner.health_gate sets its deadline, waits for the tasks (at best no time), then
    # checks at once and every interval; after a check that did not pass it gives up once
    # the deadline is reached, so the last needed check comes only if the one before it
    # came before the deadline.
    return (gate.consecutive - 2) * gate.interval


def read_timeouts(node: Node) -> Timeouts:
    fields = node.mapping(allowed=keys.TIMEOUTS.allowed)
    default = Timeouts()
    values = {
        key: opt(fields, key, positive_duration, getattr(default, key))
        for key in keys.TIMEOUTS.allowed
    }
    return Timeouts(**values)


def read_edge(node: Node) -> Edge:
    fields = node.mapping(allowed=keys.EDGE.allowed)
    default = Edge()
    start = recorded()
    edge = Edge(
        relay_image=opt(
            fields,
            "relay_image",
            lambda n: image_reference(n, "haproxy:2.8"),
            default.relay_image,
        ),
        image=opt(
            fields,
            "image",
            lambda n: image_reference(n, "nginx:1.27"),
            default.image,
        ),
        drain=opt(fields, "drain", Node.duration, default.drain),
        public_subnet=opt(
            fields,
            "public_subnet",
            lambda n: n.text(SUBNET, "should be a subnet like 10.231.0.0/24"),
            default.public_subnet,
        ),
        replicas=opt(fields, "replicas", lambda n: n.integer(1, 10), None),
        health_interval=opt(fields, "health_interval", positive_duration, default.health_interval),
        health_timeout=opt(fields, "health_timeout", positive_duration, default.health_timeout),
        dial_timeout=opt(fields, "dial_timeout", positive_duration, default.dial_timeout),
        retry_attempts=opt(
            fields, "retry_attempts", lambda n: n.integer(1, 10), default.retry_attempts
        ),
    )
    settle(start)
    if edge.health_timeout >= edge.health_interval:
        node.child("health_timeout", None).fail(
            f"{edge.health_timeout:g}s should be shorter than edge/health_interval "
            f"({edge.health_interval:g}s): Traefik asks each nginx task once an interval and "
            "waits at most this long for its answer; lower it, or raise health_interval"
        )
    return edge


def read_lock(node: Node) -> Lock:
    fields = node.mapping(allowed=keys.LOCK.allowed)
    return Lock(stale_after=opt(fields, "stale_after", _stale_after, Lock().stale_after))


def _stale_after(node: Node) -> float:
    seconds = node.duration()
    if seconds < 10:
        node.fail(
            f"should be at least 10s (six heartbeats fit in it, one every stale_after/6), "
            f"got {node.value}"
        )
    return seconds


def read_swarm(node: Node) -> SwarmSettings:
    fields = node.mapping(allowed=keys.SWARM.allowed)
    default = SwarmSettings()
    return SwarmSettings(
        data_node_label=opt(fields, "data_node_label", label_key, None),
        edge_node_label=opt(fields, "edge_node_label", label_key, None),
        docker_socket=opt(
            fields,
            "docker_socket",
            lambda n: n.text(r"/\S+", "should be an absolute path, like /var/run/docker.sock"),
            default.docker_socket,
        ),
        endpoint_mode=opt(
            fields,
            "endpoint_mode",
            lambda n: n.text("dnsrr|vip", "should be dnsrr or vip"),
            default.endpoint_mode,
        ),
        publish_mode=opt(
            fields,
            "publish_mode",
            lambda n: n.text("host|ingress", "should be host or ingress"),
            default.publish_mode,
        ),
    )


# --- Limits along a request's path: docs/request-path.md draws the chain ---

_SIZE = re.compile(r"([0-9]+)([kKmMgG]?)")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _size(node: Node) -> int:
    """Bytes, from a number or text like 512k, 32m, 1g (nginx's units)."""
    value = node.value
    found = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif found is not None:
        size = int(found[1]) * _SIZE_UNITS[found[2].lower()]
    else:
        node.fail(f"should be a size like 512k, 32m or 1g, got {describe(value)}")
    if size < 1:
        node.fail(f"should be at least 1 byte, got {describe(value)}")
    return size


def _seconds(node: Node, low: int = 1) -> int:
    """A duration of whole seconds: every hop (Traefik, nginx, HAProxy) reads it alike."""
    seconds = node.duration()
    if seconds != int(seconds) or seconds < low:
        node.fail(
            f"should be a whole number of seconds, at least {low}s, got {describe(node.value)}"
        )
    return int(seconds)


def read_limits(node: Node) -> Limits:
    fields = node.mapping(allowed=keys.LIMITS.allowed)
    default = Limits()
    limits = Limits(
        body_size=opt(fields, "body_size", _size, default.body_size),
        read_timeout=opt(fields, "read_timeout", _seconds, default.read_timeout),
        # Traefik's pool to the edges gets half of it, and needs a whole second
        idle_timeout=opt(fields, "idle_timeout", lambda n: _seconds(n, 2), default.idle_timeout),
        data_idle_timeout=opt(fields, "data_idle_timeout", _seconds, default.data_idle_timeout),
    )
    if limits.data_idle_timeout < limits.read_timeout:
        node.child("data_idle_timeout", None).fail(
            f"{limits.data_idle_timeout}s is shorter than limits/read_timeout "
            f"({limits.read_timeout}s): the relay would cut a query the request still waits "
            "for; raise it or lower limits/read_timeout"
        )
    return limits
