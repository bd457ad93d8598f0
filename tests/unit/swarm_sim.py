"""An in-memory Swarm for the fast tests of the blue/green state machine.

It answers what deploy.py sends through its two doors, engine.ArgvRunner (docker argv)
and engine.SwarmApi (Engine API reads), which SimExecutor and SimSwarm implement (`make
lint` type-checks that they do, through tests/unit/test_lock.py), with a model just
rich enough to judge a deploy: services (from the rendered stack files) whose tasks run
at once, jobs that complete, secrets and configs, and each branch's nginx: the colour
its live/ names and the colour it serves (the same, read on every request, unless it
runs an nginx.conf from before live/: `Edge.stuck`). Users are modelled by `served`:
a request fails whenever nginx serves a colour whose stack is gone, and the sim counts
those moments (`outages`). It proves the decisions, never the engine: the engine tests
do that.

`die()` models SIGKILL: the process stops where it was, so nothing it would still send
(its `finally` blocks, lock releases) reaches the Swarm.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from swarm_deploy import usecases_deploy, usecases_plan, usecases_target
from swarm_deploy.commands import DRAIN_SCRIPT, LIVE_FAILED, LIVE_SCRIPT, READ_SCRIPT
from swarm_deploy.engine import Json, Result
from swarm_deploy.errors import CommandError
from swarm_deploy.naming import LIVE_DIR

NODE = "node-1"
STAMP = "2026-11-30T12:00:00.000000000Z"
START = datetime(2026, 11, 30, 12, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


@dataclass
class Config:
    """A Swarm config: labels can change (the manager stamps UpdatedAt), data cannot."""

    labels: dict[str, str]
    data: bytes
    created: datetime
    updated: datetime
    version: int = 1
    id: str = ""


class Dead(BaseException):
    """The simulated process was killed: nothing after this point happens."""


@dataclass
class Service:
    name: str
    image: str
    labels: dict[str, str]
    container_labels: dict[str, str]
    replicas: int
    job: bool = False
    id: str = ""
    # a job's task status, when it does not simply complete
    outcome: Json | None = None
    ports: tuple[int, ...] = ()
    # on the manager's clock, when Sim._add made it
    created: datetime = START

    def to_json(self) -> Json:
        mode: Json = (
            {"ReplicatedJob": {}} if self.job else {"Replicated": {"Replicas": self.replicas}}
        )
        return {
            "ID": self.id,
            "CreatedAt": stamp(self.created),
            "UpdatedAt": STAMP,
            "Spec": {
                "Name": self.name,
                "Labels": dict(self.labels),
                "TaskTemplate": {
                    "ContainerSpec": {"Image": self.image, "Labels": dict(self.container_labels)}
                },
                "Mode": mode,
            },
            "ServiceStatus": {"RunningTasks": self.replicas, "DesiredTasks": self.replicas},
            "Endpoint": {"Spec": {"Ports": [{"PublishedPort": p} for p in self.ports]}},
        }


@dataclass
class Edge:
    """A branch's nginx: the colour its live/ names, and the colour it serves."""

    file: str | None = None
    served: str | None = None
    # naming a colour in live/ fails with this error (a full or read-only volume)
    write_error: str | None = None
    # nginx answers nothing
    down: bool = False
    # nginx stops answering (`down`) as a switch names a colour: it crashed then
    dies_on_switch: bool = False
    # an nginx.conf from before live/: it serves the colour it started with, whatever
    # live/ names
    stuck: bool = False


@dataclass
class Sim:
    services: dict[str, Service] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    # when each secret was created, on the manager's clock
    secrets_created: dict[str, datetime] = field(default_factory=dict)
    configs: dict[str, Config] = field(default_factory=dict)
    edges: dict[str, Edge] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    # (what happened, the colour nginx served then) for every moment users failed
    outages: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    alive: bool = True
    # the manager's clock: CreatedAt, UpdatedAt and /info's SystemTime
    now: datetime = START
    # where relative paths in argv (rendered stack files) are
    cwd: Path = Path()
    # releases whose health paths answer 500 through the preview route
    failing: set[str] = field(default_factory=set)
    # (release, path) -> what the preview route answers on that health path, one answer a
    # probe, the last one repeating: "200", "500", ..., or "timeout" (curl gives up)
    answers: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # service -> (state, error) of its tasks when not "running": "starting" (a health
    # check not passed yet) or "failed" (the container exited)
    task_states: dict[str, tuple[str, str]] = field(default_factory=dict)
    # what the drain job a deploy hands off does: "done" at once, "pending" (it waits on),
    # or "failed" (its task failed, nothing removed)
    drains: str = "done"
    # docker commands (argv without `docker`, joined) starting with a key exit 1 with its
    # value as stderr, as a daemon error would end them
    refused: dict[str, str] = field(default_factory=dict)
    # how the next jobs (`docker service create`) end, in order: a task's Status; after
    # these, jobs complete; and the last log lines of a job that did not
    jobs: list[Json] = field(default_factory=list)
    job_logs: str = ""
    # a branch's nginx tasks run on one node and share its live-colour volume (otherwise
    # each has its own, as on nodes of their own)
    one_volume: bool = False
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # --- what the tests look at

    def stack(self, name: str) -> dict[str, Service]:
        return {
            s.name: s
            for s in self.services.values()
            if s.labels.get("com.docker.stack.namespace") == name
        }

    def edge(self, edge_service: str, slot: int = 1) -> Edge:
        """The nginx task of a branch in `slot` (each its own, as on nodes of their own)."""
        return self.edges.setdefault(edge_task_key(edge_service, slot), Edge())

    def die(self) -> None:
        self.alive = False
        raise Dead

    def reset(self) -> None:
        """An empty Swarm again."""
        self.__dict__.update(Sim().__dict__)

    def advance(self, seconds: float) -> None:
        """Time passes on the manager (a killed holder's heartbeat goes stale)."""
        self.now += timedelta(seconds=seconds)

    def revive(self) -> None:
        """A new process: the next command starts."""
        self.alive = True

    def check_users(self, what: str) -> None:
        """After every change: would a request to any branch fail now?"""
        for key, edge in self.edges.items():
            stack_prefix = service_of(key).removesuffix("-edge_nginx")
            if edge.served and not self.stack(f"{stack_prefix}-{edge.served}"):
                self.outages.append(f"{what}: {key} serves {edge.served}, gone")

    # --- docker argv

    def run(self, argv: Sequence[str], stdin: bytes | None) -> Result:
        if not self.alive:
            raise Dead
        args = list(argv)
        assert args[0] == "docker", args
        args = args[1:]
        if args[:1] == ["--host"]:
            args = args[2:]
        raw = shlex.join(args)
        # nginx's scripts by their names
        logged = raw
        for script, name in ((LIVE_SCRIPT, "LIVE_SCRIPT"), (READ_SCRIPT, "READ_SCRIPT")):
            logged = logged.replace(shlex.quote(script), name)
        self.log.append(logged)
        for prefix, error in self.refused.items():
            if raw.startswith(prefix):
                return Result("", error, 1)
        result = self._docker(args, stdin or b"")
        self.check_users(shlex.join(args[:3]))
        return result

    def _docker(self, args: list[str], stdin: bytes) -> Result:
        head = tuple(args[:2])
        if head == ("buildx", "version"):
            return Result("", "not installed", 1)
        if args[0] == "build":
            return ok()
        if args[0] == "push":
            ref = args[1]
            repository = ref.rsplit(":", 1)[0]
            self.digests[ref] = f"{repository}@sha256:{hashlib.sha256(ref.encode()).hexdigest()}"
            return ok()
        if head == ("image", "inspect"):
            return ok(json.dumps([self.digests[args[-1]]]))
        if head in (("secret", "create"), ("config", "create")):
            return self._create(args[0], args[2:], stdin)
        if head in (("secret", "rm"), ("config", "rm")):
            store: dict[str, Any] = self.secrets if args[0] == "secret" else self.configs
            # a config is removed by its name or its ID, as docker does
            ids = {c.id: name for name, c in self.configs.items()} if args[0] == "config" else {}
            if store.pop(ids.get(args[2], args[2]), None) is None:
                return Result("", f"Error: No such {args[0]}: {args[2]}", 1)
            return ok()
        if head == ("stack", "deploy"):
            return self._stack_deploy(args)
        if head == ("stack", "rm"):
            for name in list(self.stack(args[2])):
                del self.services[name]
            for key in [k for k in self.edges if service_of(k) == f"{args[2]}_nginx"]:
                del self.edges[key]  # a branch's nginx tasks go with its edge
            return ok()
        if head == ("service", "scale"):
            name, _, replicas = args[-1].partition("=")
            if name not in self.services:
                return Result(
                    "", f"{name}: Error response from daemon: service {name} not found", 1
                )
            self.services[name].replicas = int(replicas)
            return ok()
        if head == ("service", "update"):
            service = self.services[args[-1]]
            for flag, value in itertools.pairwise(args):
                if flag == "--label-add":
                    key, _, label = value.partition("=")
                    service.labels[key] = label
                if flag == "--label-rm":
                    service.labels.pop(value, None)
            return ok()
        if head == ("service", "create"):
            name = args[args.index("--name") + 1]
            if DRAIN_SCRIPT in args:
                return self._drain(args, name)
            outcome = self.jobs.pop(0) if self.jobs else None
            self._add(Service(name, "job", {}, {}, 1, job=True, outcome=outcome))
            return ok()
        if args[0] == "exec":
            return self._exec(args[1:], stdin)
        if head in (("network", "rm"), ("volume", "rm")):
            return ok()
        raise AssertionError(f"the sim cannot answer docker {shlex.join(args)}")

    def _drain(self, args: list[str], name: str) -> Result:
        """The drain job (commands.drain_job), as `drains` says: done at once (the services it
        removes, and itself, gone), still waiting, or failed with nothing removed."""
        _, _, _, *objects = args[args.index(DRAIN_SCRIPT) + 1 :]
        if self.drains == "done":
            for kind, _, object_name in (path.partition("/") for path in objects):
                store: dict[str, Any] = self.services if kind == "services" else self.secrets
                store.pop(object_name, None)
            return ok()
        labels = dict(
            value.split("=", 1) for flag, value in itertools.pairwise(args) if flag == "--label"
        )
        outcome = (
            {"State": "running"}
            if self.drains == "pending"
            else {"State": "failed", "Err": "task: non-zero exit (1)"}
        )
        self._add(Service(name, "job", labels, {}, 1, job=True, outcome=outcome))
        return ok()

    def _create(self, kind: str, args: list[str], stdin: bytes) -> Result:
        labels = dict(
            value.split("=", 1) for flag, value in itertools.pairwise(args)
            if flag == "--label"
        )  # fmt: skip
        name = args[-2]
        store: dict[str, Any] = self.secrets if kind == "secret" else self.configs
        if name in store:
            return Result("", f"Error response from daemon: {kind} {name} already exists", 1)
        if kind == "secret":
            self.secrets[name] = labels
            self.secrets_created[name] = self.now
            return ok(name)  # its ID
        return ok(self.add_config(name, stdin, self.now, self.now, labels))

    def _stack_deploy(self, args: list[str]) -> Result:
        stack = args[-1]
        compose = yaml.safe_load((self.cwd / args[args.index("--compose-file") + 1]).read_text())
        for key, secret in (compose.get("secrets") or {}).items():
            if secret.get("external") and secret["name"] not in self.secrets:
                return Result("", f"secret not found: {secret['name']} ({key})", 1)
        for key, config in (compose.get("configs") or {}).items():
            name = config.get("name", f"{stack}_{key}")
            if name not in self.configs:
                self.add_config(name, b"", self.now, self.now)
        wanted = set()
        for name, spec in compose["services"].items():
            full = f"{stack}_{name}"
            wanted.add(full)
            deploy = spec.get("deploy") or {}
            labels = {**(deploy.get("labels") or {}), "com.docker.stack.namespace": stack}
            replicas = 1 if deploy.get("mode") == "global" else deploy.get("replicas", 1)
            existing = self.services.get(full)
            container_labels = dict(spec.get("labels") or {})
            if existing is None:
                self._add(Service(full, spec["image"], labels, container_labels, replicas))
            else:
                existing.image, existing.labels = spec["image"], labels
                existing.container_labels, existing.replicas = container_labels, replicas
            if name == "nginx":
                for slot in range(1, replicas + 1):
                    self.edge(full, slot)
        for name in set(self.stack(stack)) - wanted:  # --prune
            del self.services[name]
        return ok()

    def add_config(
        self,
        name: str,
        data: bytes,
        created: datetime,
        updated: datetime,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """A config as the manager stores it (with stamps a test may set); its ID."""
        config_id = f"id{next(self._ids)}"
        self.configs[name] = Config(dict(labels or {}), data, created, updated, id=config_id)
        return config_id

    def run_service(
        self,
        stack: str,
        name: str,
        image: str,
        labels: Mapping[str, str],
        ports: tuple[int, ...] = (),
    ) -> Service:
        """A service of a stack, as `docker stack deploy` would have left it."""
        service = Service(
            f"{stack}_{name}", image, {**labels, "com.docker.stack.namespace": stack}, {}, 1,
            ports=ports,
        )  # fmt: skip
        self._add(service)
        return service

    def _add(self, service: Service) -> None:
        service.id = f"id{next(self._ids)}"
        service.created = self.now
        self.services[service.name] = service

    def _exec(self, args: list[str], stdin: bytes) -> Result:
        container, command = args[0], args[1:]
        key = container.removeprefix("container-of-")
        edge_service = service_of(key)
        edge = self.edges.setdefault(key, Edge())
        if command[:4] == ["sh", "-c", READ_SCRIPT, "sh"]:
            live, *urls = command[4:]
            headers = self._curl(edge_service, edge, ["curl", *urls]).stdout if urls else ""
            return ok(f"{headers}--- {live}\n{edge.file or ''}")
        if command[:4] == ["sh", "-c", LIVE_SCRIPT, "sh"]:
            return self._live_script(edge_service, edge, command[4:])
        if command[0] == "curl":
            return self._curl(edge_service, edge, command)
        raise AssertionError(f"the sim's nginx cannot run {command}")

    def _live_script(self, edge_service: str, edge: Edge, args: list[str]) -> Result:
        """commands.LIVE_SCRIPT as this nginx would run it (tests/tools/test_live_script.py
        runs the real one): the colour it found on stdout, its reason on stderr."""
        colour = args[1]
        old = edge.file or ""
        why = self._name(edge_service, edge, colour)
        if len(args) == 2:
            return ok(old) if why is None else Result(old, f"{why}\n", LIVE_FAILED)
        _, route, _, *paths = args[2:]
        if why is None:
            gave = self._look(edge_service, edge, route, paths)
            if all(seen == colour for seen in gave.values()):
                return ok(old)
            why = f"after the switch to {colour}, the public route gave {shown(gave)}"
        reasons = [why]
        back = self._name(edge_service, edge, old)
        if back is not None:
            reasons.append(f"naming the previous colour again: {back}")
        elif colour in (gave := self._look(edge_service, edge, route, paths)).values():
            reasons.append(
                f"the previous colour ({old or 'none'}) is named again, but the public route "
                f"still gave {shown(gave)}"
            )
        return Result(old, "".join(f"{reason}\n" for reason in reasons), LIVE_FAILED)

    def _name(self, edge_service: str, edge: Edge, colour: str) -> str | None:
        """`colour` (empty: none) named in live/, nginx serving it from the next request on:
        why that failed, if it did."""
        if edge.write_error is not None:
            return f"could not name {colour or 'no colour'} in {LIVE_DIR}: {edge.write_error}"
        edge.down = edge.down or edge.dies_on_switch
        sharing = [e for k, e in self.edges.items() if service_of(k) == edge_service]
        for written in sharing if self.one_volume else [edge]:
            written.file = colour or None
            if not written.stuck:
                written.served = written.file
        return None

    def _look(self, edge_service: str, edge: Edge, route: str, paths: list[str]) -> dict[str, str]:
        """The colour each path answers with through the public route, as the script shows it."""
        gave = {}
        for path in paths:
            answer = self._curl(edge_service, edge, ["curl", route + path]).stdout
            found = re.search(r"^X-Swarm-Deploy-Colour: (blue|green)\b", answer, re.M)
            gave[path] = found.group(1) if found else "no colour header"
        return gave

    def _curl(self, edge_service: str, edge: Edge, command: list[str]) -> Result:
        """curl of each URL in `command`, in order, as the edge would answer it."""
        urls = [part for part in command if part.startswith("http://")]
        if len(urls) == 1:
            return self._curl_one(edge_service, edge, command, urls[0])
        results = [self._curl_one(edge_service, edge, command, url) for url in urls]
        printed = "\n".join(result.stdout or "000" for result in results)
        return Result(printed + "\n", "", results[-1].returncode)

    def _curl_one(self, edge_service: str, edge: Edge, command: list[str], url: str) -> Result:
        if edge.down:
            return Result("", "curl: (7) Failed to connect to 127.0.0.1", 7)
        colour = edge.served
        if url.startswith("http://127.0.0.1:8081"):
            header = command[command.index("-H") + 1] if "-H" in command else ""
            colour = header.split(": ", 1)[1] if header else None
        branch = edge_service.removesuffix("-edge_nginx")
        if colour is None:
            code, shown = "503", "none"
        else:
            services = self.stack(f"{branch}-{colour}")
            releases = {s.labels.get("swarm-deploy.release") for s in services.values()}
            code = "500" if releases & self.failing else "200" if services else "502"
            if url.startswith("http://127.0.0.1:8081") and code == "200":
                code = self._answer(releases, urlsplit(url).path)
            if code == "timeout":
                return Result("000", "curl: (28) Operation timed out", 28)
            shown = colour
        if "-w" in command:
            return ok(code)
        return ok(f"HTTP/1.1 {code} X\r\nX-Swarm-Deploy-Colour: {shown}\r\n\r\n")

    def _answer(self, releases: set[str | None], path: str) -> str:
        """The next scripted answer of a release's health path through the preview route."""
        for release in releases:
            script = self.answers.get((release or "", path))
            if script:
                return script.pop(0) if len(script) > 1 else script[0]
        return "200"

    def service_json(self, service: Service) -> Json:
        """A service as the Engine shows it: tasks that are not running are not counted."""
        found = service.to_json()
        if service.name in self.task_states:
            found["ServiceStatus"]["RunningTasks"] = 0
        return found

    # --- Engine API reads

    def info(self) -> Json:
        return {"Swarm": {"NodeID": NODE, "LocalNodeState": "active", "ControlAvailable": True}}

    def services_with(self, labels: Mapping[str, str]) -> list[Json]:
        return [
            self.service_json(s)
            for s in self.services.values()
            if all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def tasks(self, ids: Sequence[str]) -> list[Json]:
        tasks = []
        for service in self.services.values():
            if service.id not in ids:
                continue
            count = 1 if service.job else service.replicas
            state, error = self.task_states.get(service.name, ("running", ""))
            for slot in range(1, count + 1):
                tasks.append({
                    "ID": f"{service.id}.{slot}",
                    "ServiceID": service.id,
                    "Slot": slot,
                    "NodeID": NODE,
                    "CreatedAt": STAMP,
                    "DesiredState": "shutdown" if service.job else "running",
                    "Status": service.outcome or {
                        "State": "complete" if service.job else state,
                        "Err": error,
                        "ContainerStatus": {
                            "ContainerID": f"container-of-{edge_task_key(service.name, slot)}",
                            "ExitCode": 1 if state == "failed" else 0,
                        },
                    },
                })  # fmt: skip
        return tasks


def edge_task_key(service: str, slot: int) -> str:
    """A task's key in Sim.edges and its container's name: the service's name for slot 1
    (what every single-task test names), `service.slot` for the others."""
    return service if slot == 1 else f"{service}.{slot}"


# the arguments of a switch after its colour's, in the local profile
SWITCH = ("15", "http://127.0.0.1", "X-Swarm-Deploy-Colour", "/api/health", "/health")


def live_script(container: str, colour: str, *switch: str) -> str:
    """commands.LIVE_SCRIPT run in an nginx task, as the sim logs it (the script by name)."""
    argv = ["exec", container, "sh", "-c", "LIVE_SCRIPT", "sh", LIVE_DIR, colour, *switch]
    return shlex.join(argv)


def read_script(container: str, *url: str) -> str:
    """commands.READ_SCRIPT run in an nginx task, as the sim logs it (the script by name)."""
    return shlex.join(["exec", container, "sh", "-c", "READ_SCRIPT", "sh", LIVE_DIR, *url])


def shown(gave: Mapping[str, str]) -> str:
    return ", ".join(f"{path} -> {colour}" for path, colour in gave.items())


def service_of(key: str) -> str:
    """The service of a task's key."""
    name, _, slot = key.rpartition(".")
    return name if name and slot.isdigit() else key


def ok(stdout: str = "") -> Result:
    return Result(stdout, "", 0)


class SimExecutor:
    """An engine.ArgvRunner: stands in for engine.Executor."""

    def __init__(self, sim: Sim, cwd: Path) -> None:
        self.sim = sim
        self.cwd = sim.cwd = cwd
        self.env: dict[str, str] = {}

    def reach_through(self, swarm: object) -> None:
        pass  # the sim answers docker argv whatever its --host

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        check: bool = True,
        timeout: float = 900,
        shielded: bool = False,
    ) -> Result:
        result = self.sim.run(argv, stdin)
        if check and result.returncode != 0:
            raise CommandError(shlex.join(argv), result.returncode, result.stderr)
        return result

    def pipe(self, producer: Sequence[str], consumer: Sequence[str], timeout: float = 1800) -> None:
        raise AssertionError("the sim streams no images")


class SimSwarm:
    """An engine.SwarmApi: stands in for engine.Swarm."""

    def __init__(self, sim: Sim, target: str) -> None:
        self.sim = sim
        self.target = target
        self.info = sim.info()

    def _alive(self) -> None:
        if not self.sim.alive:
            raise Dead

    def require_manager(self) -> None:
        self._alive()

    def services(self, labels: Mapping[str, str]) -> list[Json]:
        self._alive()
        return self.sim.services_with(labels)

    def service(self, name: str) -> Json | None:
        self._alive()
        found = self.sim.services.get(name)
        return self.sim.service_json(found) if found else None

    def tasks(self, service_ids: Sequence[str]) -> list[Json]:
        self._alive()
        return self.sim.tasks(service_ids)

    def secrets(self, labels: Mapping[str, str]) -> list[Json]:
        self._alive()
        return [
            {
                "ID": name,
                "CreatedAt": stamp(self.sim.secrets_created.get(name, START)),
                "Spec": {"Name": name, "Labels": dict(found)},
            }
            for name, found in self.sim.secrets.items()
            if all(found.get(k) == v for k, v in labels.items())
        ]

    def configs(self, labels: Mapping[str, str]) -> list[Json]:
        self._alive()
        return [
            self._config(name)
            for name, found in self.sim.configs.items()
            if all(found.labels.get(k) == v for k, v in labels.items())
        ]

    def config(self, name: str) -> Json | None:
        self._alive()
        return self._config(name) if name in self.sim.configs else None

    def relabel_config(self, config_id: str, labels: Mapping[str, str]) -> bool:
        self._alive()
        found = next((c for c in self.sim.configs.values() if c.id == config_id), None)
        if found is None:
            return False
        found.labels |= labels
        found.updated, found.version = self.sim.now, found.version + 1
        return True

    def now(self) -> datetime:
        self._alive()
        return self.sim.now

    def another(self, timeout: int) -> SimSwarm:
        return SimSwarm(self.sim, self.target)

    def _config(self, name: str) -> Json:
        found = self.sim.configs[name]
        return {
            "ID": found.id,
            "Version": {"Index": found.version},
            "CreatedAt": stamp(found.created),
            "UpdatedAt": stamp(found.updated),
            "Spec": {
                "Name": name,
                "Labels": dict(found.labels),
                "Data": base64.b64encode(found.data).decode(),
            },
        }

    def volume(self, name: str) -> Json | None:
        return None

    def containers(self, labels: Mapping[str, str]) -> list[str]:
        self._alive()
        return []

    def remove_containers(self, labels: Mapping[str, str]) -> None:
        self._alive()

    def node(self, node_id: str) -> Json:
        return {"ID": NODE, "Status": {"Addr": "127.0.0.1"}, "Description": {"Hostname": "sim"}}

    def nodes(self) -> list[Json]:
        return [self.node(NODE)]

    def remove_service(self, name: str) -> None:
        self._alive()
        self.sim.services.pop(name, None)

    def service_logs(self, service_id: str, tail: int = 20) -> str:
        return self.sim.job_logs

    def close(self) -> None:
        pass


def use_sim(monkeypatch: pytest.MonkeyPatch, sim: Sim) -> None:
    """The commands that open a target (usecases_deploy.py, usecases_target.py, and
    usecases_plan.py's plan --read-target) open `sim`."""
    for module in (usecases_deploy, usecases_plan, usecases_target):
        monkeypatch.setattr(module, "Executor", lambda cwd, env=None: SimExecutor(sim, cwd))
    # usecases_plan.open_swarm opens every target
    monkeypatch.setattr(usecases_plan, "Swarm", lambda target, socket="": SimSwarm(sim, target))
