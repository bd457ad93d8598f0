"""What a first deploy needs of the target, decided: one pure function per check.

Each takes the config and the facts doctor read (usecases_doctor.py reads each once)
and returns a Finding: ok, warn (a deploy may still work) or blocker (it will not),
the value observed and the fix. docs/doctor.md lists the checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Literal

from swarm_deploy.commands import LOCAL, registry_host, ssh_address
from swarm_deploy.config import BranchRule, Config
from swarm_deploy.engine import Json, manager_problem
from swarm_deploy.facts import Engine, Node, Service
from swarm_deploy.naming import label

Level = Literal["ok", "warn", "blocker"]

# The oldest engine the tests have run (README: "Versions proven": 20.10.24 until 8e981e6).
MIN_ENGINE = (20, 10)
# The first engine that runs HEALTHCHECK --start-interval (API 1.44); older ones run a
# task's first check one --interval after it starts, and the gate waits for that check.
START_INTERVAL_ENGINE = (25, 0)
# Rough budgets, not measurements of your app: docs/doctor.md says how they are counted.
TASK_MEMORY = 128 * 2**20
BRANCH_DISK = 2**30
MIN_DISK = 2**30
# A registry token that expires sooner than this may be gone when Swarm reschedules a task.
TOKEN_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    observed: str
    fix: str = ""


@dataclass(frozen=True)
class SshProbe:
    """`ssh -o BatchMode=yes TARGET true`: its exit code and what it said."""

    returncode: int
    stderr: str


@dataclass(frozen=True)
class Login:
    """The deployer's docker login for a registry host: `how` is "password", a
    credential helper's name, or None (no login); `expires` when a token says so."""

    registry: str
    config_file: str
    how: str | None = None
    user: str | None = None
    expires: datetime | None = None


@dataclass(frozen=True)
class HostFacts:
    """What the target's host said: free bytes where docker keeps images, the TCP ports
    something listens on, and IPVS: loaded, loadable (a module on disk) or neither."""

    free_disk: int | None
    listening: frozenset[int]
    ipvs_loaded: bool
    ipvs_module: bool


# --- ssh


def ssh(target: str, probe: SshProbe | None) -> Finding:
    if target == LOCAL or probe is None:
        return Finding("ssh", "ok", "the local engine: no ssh")
    address, port = ssh_address(target)
    host = address.rpartition("@")[2]
    said = probe.stderr.strip().splitlines()
    last = said[-1] if said else f"exit {probe.returncode}"
    if probe.returncode == 0:
        return Finding("ssh", "ok", f"{address} port {port} answers with a key, its host key known")
    text = probe.stderr
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return Finding(
            "ssh", "blocker", f"{address}: its host key changed",
            f"if the VM was rebuilt, check its new key on its console, then "
            f"`ssh-keygen -R '[{host}]:{port}'` and add the new one to ~/.ssh/known_hosts",
        )  # fmt: skip
    if "Host key verification failed" in text or "host key is known for" in text:
        return Finding(
            "ssh", "blocker", f"{address}: {last}",
            f"add the host's key to ~/.ssh/known_hosts: `ssh-keyscan -p {port} {host} >> "
            "~/.ssh/known_hosts`, after checking its fingerprint on the VM's console "
            "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)",
        )  # fmt: skip
    if "Permission denied" in text:
        return Finding(
            "ssh", "blocker", f"{address}: {last}",
            f"the host refused every key offered: name your key for it in ~/.ssh/config "
            f"(`Host {host}` / `IdentityFile ~/.ssh/KEY`) and put KEY.pub in the user's "
            f"~/.ssh/authorized_keys there (`ssh-copy-id -p {port} {address}`)",
        )  # fmt: skip
    return Finding(
        "ssh", "blocker", f"{address}: {last}",
        f"check the address and that sshd listens on port {port}: `ssh -p {port} "
        f"{address} true` should print nothing and exit 0",
    )  # fmt: skip


# --- the deployer's docker CLI


def docker_client(version: str | None) -> Finding:
    """The CLI every deploy runs (`docker stack deploy`, builds, pushes) on this machine."""
    if version is None:
        return Finding(
            "docker cli", "blocker", "no docker CLI on PATH here",
            "install the docker CLI on the deploying machine (README: the version proven); "
            "a deploy runs `docker stack deploy` through it",
        )  # fmt: skip
    return Finding("docker cli", "ok", f"docker CLI {version} here")


# --- the engine


def ssh_forward(target: str, socket: str, forwarded: bool) -> Finding:
    """Whether ssh forwards the manager's Docker socket (engine.SshForward)."""
    if forwarded:
        return Finding(
            "ssh forward", "ok", f"the Engine API goes through one ssh forward of {socket}"
        )
    address, _ = ssh_address(target)
    return Finding(
        "ssh forward", "warn",
        f"{address} does not forward {socket}: each Engine API call opens an ssh session of "
        "its own (0.1 s or more each), so deploys are slower",
        "set `AllowTcpForwarding local` (or yes) in the host's sshd_config and reload sshd, "
        "or set swarm.docker_socket to the socket docker listens on there",
    )  # fmt: skip


def engine_unreachable(message: str) -> Finding:
    return Finding("engine", "blocker", message, "the other checks need the engine: fix this first")


def docker_version(engine: Engine) -> Finding:
    found = re.match(r"(\d+)\.(\d+)", engine.version)
    if found is None:
        return Finding(
            "docker", "warn", f"Docker Engine {engine.version!r}: not a version this can compare",
            f"use Docker Engine {MIN_ENGINE[0]}.{MIN_ENGINE[1]} or newer",
        )  # fmt: skip
    version = (int(found[1]), int(found[2]))
    if version < MIN_ENGINE:
        return Finding(
            "docker", "blocker",
            f"Docker Engine {engine.version}, older than {MIN_ENGINE[0]}.{MIN_ENGINE[1]}",
            f"upgrade docker on the target to {MIN_ENGINE[0]}.{MIN_ENGINE[1]} or newer "
            "(README: the versions proven)",
        )  # fmt: skip
    if version < START_INTERVAL_ENGINE:
        return Finding(
            "docker", "warn",
            f"Docker Engine {engine.version} ignores HEALTHCHECK --start-interval: a new "
            "task is healthy, and a deploy can go live, one --interval after it starts at the "
            "earliest",
            f"upgrade docker on the target to {START_INTERVAL_ENGINE[0]} or newer for faster "
            "deploys",
        )  # fmt: skip
    return Finding("docker", "ok", f"Docker Engine {engine.version}")


def swarm_role(target: str, info: Json) -> Finding:
    problem = manager_problem(target, info)
    if problem is None:
        return Finding("swarm", "ok", f"{target} is a swarm manager")
    observed, _, fix = problem.partition("; ")
    return Finding("swarm", "blocker", observed, fix)


def node_labels(config: Config, nodes: Sequence[Node]) -> list[Finding]:
    """Each node label the config's placement constraints name (`label == true`): some
    node must carry it, a manager where the shared stack pins a service to one."""
    wanted: list[tuple[str, str, bool]] = []
    if config.swarm.data_node_label:
        on_manager = bool({"prometheus", "traefik"} & set(config.shared))
        wanted.append(("swarm/data_node_label", config.swarm.data_node_label, on_manager))
    if config.swarm.edge_node_label:
        wanted.append(("swarm/edge_node_label", config.swarm.edge_node_label, False))
    if not wanted:
        return [Finding("node labels", "ok", "the config's placement names no node label")]
    names = ", ".join(sorted(n.hostname for n in nodes)) or "none"
    findings = []
    for key, name, on_manager in wanted:
        carrying = sorted(n.hostname for n in nodes if n.labels.get(name) == "true")
        managers = sorted(
            n.hostname for n in nodes if n.labels.get(name) == "true" and n.role == "manager"
        )
        if not carrying or (on_manager and not managers):
            where = "no manager" if carrying else "no node"
            node = next((n.hostname for n in nodes if n.role == "manager"), "NODE")
            findings.append(Finding(
                "node labels", "blocker",
                f"{key}: {where} has {name}=true (nodes: {names})",
                f"docker node update --label-add {name}=true {node}"
                + (" (a manager: Prometheus and Traefik run on one)" if on_manager else ""),
            ))  # fmt: skip
        else:
            findings.append(
                Finding("node labels", "ok", f"{key}: {name}=true on {', '.join(carrying)}")
            )
    return findings


# --- the registry


def registry(config: Config, login: Login, now: datetime) -> Finding:
    host = registry_host(config.registry)
    if login.how is None:
        return Finding(
            "registry", "warn", f"no login for {host} in {login.config_file}",
            f"if {host} needs one: `docker login {host}` with a token that lasts (tasks "
            "Swarm reschedules later pull with it); a registry open to pulls needs none",
        )  # fmt: skip
    who = f" as {login.user}" if login.user else ""
    if login.expires is not None:
        left = login.expires - now
        stamp = login.expires.strftime("%Y-%m-%d %H:%M UTC")
        if left <= timedelta(0):
            return Finding(
                "registry", "blocker", f"the login to {host}{who} expired at {stamp}",
                f"`docker login {host}` again, with a token that lasts",
            )  # fmt: skip
        if left < TOKEN_MARGIN:
            return Finding(
                "registry", "warn", f"the login to {host}{who} expires at {stamp}",
                "use a token that lasts: a task Swarm reschedules after that cannot pull",
            )  # fmt: skip
        return Finding("registry", "ok", f"logged in to {host}{who}, until {stamp}")
    lifetime = (
        "a password: no expiry the client can see"
        if login.how == "password"
        else f"kept by docker-credential-{login.how}: its lifetime is the helper's"
    )
    return Finding("registry", "ok", f"logged in to {host}{who} ({lifetime})")


def registry_token(environ: Mapping[str, str]) -> str | None:
    """A warning when the deploy's registry token is one that expires with its job."""
    if environ.get("SWARM_DEPLOY_REGISTRY_TOKEN", "").startswith("ghs_"):
        return (
            "the registry token looks like a workflow's GITHUB_TOKEN (ghs_...), which "
            "expires with the job: tasks the Swarm reschedules later could not pull. "
            "Use a token that lasts (a personal access token with read:packages)."
        )
    return None


# --- ports


@dataclass(frozen=True)
class Wanted:
    """A port the config publishes: its key path, whose it is, and which services hold
    it already for that owner (a branch of the rule, or the shared Traefik)."""

    key: str
    port: int
    owner: str
    ours: Callable[[Service], bool]


def wanted_ports(config: Config) -> list[Wanted]:
    """Each port a branch rule publishes, and Traefik's when the shared stack runs it."""
    found = []
    for index, rule in enumerate(config.branches):
        if rule.port is not None:
            found.append(Wanted(
                f"branches[{index}]/port", rule.port, f"the rule {rule.match!r}",
                partial(_of_rule, config, rule),
            ))  # fmt: skip
    traefik = config.shared.get("traefik")
    if traefik is not None and traefik.ports is not None:
        name = config.shared_names.service("traefik")
        for which, port in (("http", traefik.ports.http), ("https", traefik.ports.https)):
            found.append(Wanted(
                f"shared/traefik/ports/{which}", port, "shared/traefik",
                partial(_named, name),
            ))  # fmt: skip
    return found


def _named(name: str, service: Service) -> bool:
    return service.name == name


def _of_rule(config: Config, rule: BranchRule, service: Service) -> bool:
    branch = service.labels.get(label("branch"))
    return (
        service.labels.get(label("app")) == config.app
        and bool(branch)
        and config.rule(branch or "") == rule
    )


def ports(config: Config, services: Sequence[Service], listening: frozenset[int]) -> list[Finding]:
    """Each port the config publishes: free, or published already by what it is for."""
    findings = []
    for want in wanted_ports(config):
        key, port = want.key, want.port
        owners = [s for s in services if port in s.ports]
        others = [s for s in owners if not want.ours(s)]
        if owners and not others:
            findings.append(Finding(
                "ports", "ok", f"{key}: {port} is published by {owners[0].name} (its own)"
            ))  # fmt: skip
        elif others:
            findings.append(Finding(
                "ports", "blocker", f"{key}: {port} is published by {others[0].name}",
                f"give {want.owner} another port, or `docker service rm {others[0].name}`",
            ))  # fmt: skip
        elif port in listening:
            findings.append(Finding(
                "ports", "blocker",
                f"{key}: something on the host listens on {port} (no swarm service)",
                f"stop it (`ss -ltnp 'sport = :{port}'` names it), or give {want.owner} "
                "another port",
            ))  # fmt: skip
        else:
            findings.append(Finding("ports", "ok", f"{key}: {port} is free"))
    if not findings:
        return [Finding("ports", "ok", "the config publishes no port")]
    return findings


# --- disk and memory


def planned_branches(config: Config) -> int:
    """One branch per rule: a rule with `*` may deploy many, and counts as one."""
    return len(config.branches)


def tasks_per_branch(config: Config, rule: BranchRule) -> int:
    """Both colours run during a switch; the edge runs nginx, the relay and the agent."""
    colours = 2 * sum(s.replicas for s in config.services.values())
    agent = any(s.metrics is not None for s in config.services.values())
    return colours + config.edge_replicas(rule) + 1 + int(agent)


def _size(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


def resources(config: Config, engine: Engine, free_disk: int | None) -> list[Finding]:
    branches = planned_branches(config)
    tasks = len(config.shared) + sum(tasks_per_branch(config, r) for r in config.branches)
    memory = tasks * TASK_MEMORY
    plan = f"{branches} branches planned, {tasks} tasks at most"
    findings = [
        Finding(
            "memory",
            "warn",
            f"{_size(engine.memory)} on the host for {plan}",
            f"at {_size(TASK_MEMORY)} a task, they need {_size(memory)}: a larger VM, or "
            "fewer branch rules or replicas",
        )
        if engine.memory < memory
        else Finding("memory", "ok", f"{_size(engine.memory)} for {plan} ({_size(memory)})")
    ]
    disk = branches * BRANCH_DISK
    where = engine.docker_root
    budget = f"{_size(disk)} for {branches} branches"
    if free_disk is None:
        findings.append(Finding(
            "disk", "warn", f"the free space in {where} could not be read",
            f"check `df -h {where}` there: {budget}",
        ))  # fmt: skip
    elif free_disk < MIN_DISK:
        findings.append(Finding(
            "disk", "blocker", f"{_size(free_disk)} free in {where}",
            f"free space there (`docker system prune` removes unused images): image "
            f"pulls need {_size(MIN_DISK)} at least, {budget}",
        ))  # fmt: skip
    elif free_disk < disk:
        findings.append(Finding(
            "disk", "warn", f"{_size(free_disk)} free in {where}, {budget}",
            "free space there (`docker system prune`) or grow the disk",
        ))  # fmt: skip
    else:
        findings.append(Finding(
            "disk", "ok", f"{_size(free_disk)} free in {where} ({budget})"
        ))  # fmt: skip
    return findings


# --- IPVS


def ipvs(config: Config, host: HostFacts) -> Finding:
    """Service VIPs and the ingress mesh need IPVS; the defaults (dnsrr, host) do not."""
    settings = (
        f"endpoint_mode {config.swarm.endpoint_mode}, publish_mode {config.swarm.publish_mode}"
    )
    needed = config.swarm.endpoint_mode == "vip" or config.swarm.publish_mode == "ingress"
    state = (
        "loaded" if host.ipvs_loaded else "a module not loaded" if host.ipvs_module else "absent"
    )
    if not needed:
        return Finding("ipvs", "ok", f"not needed ({settings}); in the kernel: {state}")
    if host.ipvs_loaded:
        return Finding("ipvs", "ok", f"loaded, as {settings} needs")
    if host.ipvs_module:
        return Finding(
            "ipvs", "warn", f"{settings} needs IPVS; the kernel has it as a module, not loaded",
            "`modprobe ip_vs` there, and name it in /etc/modules-load.d/ so a reboot loads it",
        )  # fmt: skip
    return Finding(
        "ipvs", "blocker", f"{settings} needs IPVS; the kernel has none",
        "set swarm/endpoint_mode: dnsrr and swarm/publish_mode: host (the defaults), or run "
        "a kernel with ip_vs",
    )  # fmt: skip


def blockers(findings: Sequence[Finding]) -> int:
    return sum(f.level == "blocker" for f in findings)


@dataclass(frozen=True)
class Read:
    """Everything doctor read, each once. `engine_error`: why the engine could not be
    read (the checks that need it are left out); `nodes` and `services` only from a
    manager."""

    ssh: SshProbe | None
    login: Login
    now: datetime
    client: str | None = None
    engine_error: str | None = None
    info: Json | None = None
    engine: Engine | None = None
    host: HostFacts | None = None
    nodes: tuple[Node, ...] = ()
    services: tuple[Service, ...] = ()
    # over ssh://: whether the Engine API went through a forward of swarm.docker_socket
    forwarded: bool | None = None


def decide(config: Config, target: str, read: Read) -> list[Finding]:
    """Every check, in the order a first deploy meets them."""
    findings = [docker_client(read.client), ssh(target, read.ssh)]
    if findings[-1].level == "blocker":
        return findings
    if read.engine_error is not None or read.info is None or read.engine is None:
        return [*findings, engine_unreachable(read.engine_error or "not read")]
    if read.forwarded is not None:
        findings.append(ssh_forward(target, config.swarm.docker_socket, read.forwarded))
    findings += [docker_version(read.engine), swarm_role(target, read.info)]
    if manager_problem(target, read.info) is None:
        findings += node_labels(config, read.nodes)
    findings.append(registry(config, read.login, read.now))
    if manager_problem(target, read.info) is None:
        findings += ports(config, read.services, read.host.listening if read.host else frozenset())
    findings += resources(config, read.engine, read.host.free_disk if read.host else None)
    if read.host is not None:
        findings.append(ipvs(config, read.host))
    return findings
