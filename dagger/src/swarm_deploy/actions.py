"""The actions a plan's steps are made of: a docker argv (`Command`, `Pipe`) or a typed
action the deployer performs through the Engine API (waiting, gating, switching, pruning)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from swarm_deploy import commands
from swarm_deploy.config import Gate
from swarm_deploy.render import Release


@dataclass(frozen=True)
class Command:
    """A docker command; `stdin_secret` names the secret whose value goes to its stdin;
    `done_if` is an error message that means what the command does is already done."""

    argv: tuple[str, ...]
    stdin_secret: str | None = None
    done_if: str | None = None

    def describe(self) -> str:
        shown = shlex.join(self.argv)
        return f"{shown} < secret {self.stdin_secret}" if self.stdin_secret else shown


@dataclass(frozen=True)
class Pipe:
    """One command's stdout into another's stdin: images to a target without a registry."""

    producer: tuple[str, ...]
    consumer: tuple[str, ...]

    def describe(self) -> str:
        return f"{shlex.join(self.producer)} | {shlex.join(self.consumer)}"


@dataclass(frozen=True)
class PinDigests:
    """Read each pushed image's digest, so the stacks deploy `image@sha256:...`."""

    refs: tuple[str, ...]

    def describe(self) -> str:
        return "pin " + ", ".join(self.refs) + " to their registry digests"


@dataclass(frozen=True)
class RenderFiles:
    directory: str

    def describe(self) -> str:
        return f"write the branch's stacks and configs to {self.directory}/"


@dataclass(frozen=True)
class WaitConverged:
    """Read each service's tasks and UpdateStatus until all run, or one fails."""

    target: str
    stack: str
    timeout: float

    def describe(self) -> str:
        return (
            f"wait until every task of {self.stack} runs and no update rolled back "
            f"(at most {self.timeout:g}s; a failed or rejected task fails the deploy)"
        )


@dataclass(frozen=True)
class RunJob:
    """A one-shot Swarm job (it runs on whichever node can take it): start, wait, remove."""

    argv: tuple[str, ...]
    job: str
    timeout: float

    def describe(self) -> str:
        return f"{shlex.join(self.argv)}  (then wait for the job, at most {self.timeout:g}s)"


@dataclass(frozen=True)
class EnsureData:
    """A branch's data job of a kind (its part of the shared service): the deployer reads
    the service's ID, runs the job, and records what it ensured (record.data_version)."""

    job: RunJob
    kind: str
    service: str
    inputs: str  # deploy_steps.data_inputs

    def describe(self) -> str:
        return f"{self.job.describe()}; then its version is recorded with the ID of {self.service}"


@dataclass(frozen=True)
class NginxTest:
    """`nginx -t` on a new nginx config before the edge redeploys: a one-shot job of the
    edge's image that mounts the config where the edge will, as the same Swarm config."""

    target: str
    image: str
    config: str
    file: str  # the rendered nginx.conf, relative to the project
    create: Command  # the Swarm config the edge stack will name; it may exist already
    job: RunJob

    def describe(self) -> str:
        return f"{self.create.describe()} (unless it exists); {self.job.describe()}"


@dataclass(frozen=True)
class WaitGone:
    """Wait until the stacks' containers have stopped (networks and volumes free up then)."""

    target: str
    stacks: tuple[str, ...]
    timeout: float

    def describe(self) -> str:
        stacks = ", ".join(self.stacks)
        return f"wait until no container of {stacks} is left (at most {self.timeout:g}s)"


@dataclass(frozen=True)
class HandOffDrain:
    """The old colour's drain and removal, left to a one-shot job on the target
    (commands.drain_job), so that the deploy returns once the release is live."""

    target: str
    job: str
    stack: str
    seconds: float
    image: str
    labels: Mapping[str, str]
    # what the new colour and the edge use: of the old colour's secrets, the job keeps them
    keep: frozenset[str]
    socket: str  # swarm.docker_socket

    def argv(self, services: Sequence[str], secrets: Sequence[str]) -> list[str]:
        return commands.drain_job(
            self.target, name=self.job, image=self.image, seconds=self.seconds,
            services=services, secrets=secrets, labels=self.labels, socket=self.socket,
        )  # fmt: skip

    def describe(self) -> str:
        return (
            f"a one-shot job {self.job} on a manager removes {self.stack}'s services "
            f"{self.seconds:g}s from now, then the secrets only they used, then itself"
        )


@dataclass(frozen=True)
class FinishDrain:
    """Wait for the drain a deploy handed to the target (HandOffDrain); if its job stopped,
    or is still there at `timeout`, remove it and what it was to remove."""

    target: str
    job: str
    stack: str
    timeout: float

    def describe(self) -> str:
        return (
            f"wait until the job {self.job} has removed {self.stack} (at most "
            f"{self.timeout:g}s); if it stopped short, remove it and {self.stack} now"
        )


@dataclass(frozen=True)
class RemoveIfPresent:
    """`docker <kind> rm NAME` for each name, where "not found" means already done."""

    target: str
    kind: str
    names: tuple[str, ...]

    def argv(self, name: str) -> list[str]:
        return commands.docker(self.target, self.kind, "rm", name)

    def describe(self) -> str:
        return "; ".join(shlex.join(self.argv(name)) for name in self.names) + " (if present)"


@dataclass(frozen=True)
class HealthGate:
    """Tasks healthy, then N consecutive 200s through the edge's preview route."""

    target: str
    edge_service: str
    colour: str
    paths: tuple[str, ...]
    gate: Gate

    def describe(self) -> str:
        return (
            f"(a) every {self.colour} task running, healthy where the image has a HEALTHCHECK; "
            f"(b) from then on, {self.gate.consecutive} consecutive 200s from "
            f"{', '.join(self.paths)} through {self.edge_service}'s preview route, every "
            f"{self.gate.interval:g}s; after a {self.gate.start_grace:g}s start grace, "
            f"{self.gate.consecutive} failed in a row end it. At most {self.gate.timeout:g}s "
            "in all; a task that fails ends the gate at once"
        )


@dataclass(frozen=True)
class Switch:
    """Point the edge at a colour: name it in live/ (no reload), verify."""

    target: str
    edge_service: str
    colour: str
    paths: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"name {self.colour} in live/ of {self.edge_service} (one rename; nginx reads "
            f"it on every request: no reload), then check that {', '.join(self.paths)} "
            f"answer from {self.colour} through the public route"
        )


@dataclass(frozen=True)
class RewriteLive:
    """Make live/ name what nginx serves again."""

    target: str
    edge_service: str
    colour: str

    def describe(self) -> str:
        return f"name {self.colour} in live/ of {self.edge_service}"


@dataclass(frozen=True)
class Migrate:
    """A service's migrate command, once, as a job with the new release's image and the
    service's environment, secrets and networks, before the new colour starts."""

    target: str
    job: str
    image: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    secrets: Mapping[str, str]
    networks: tuple[str, ...]
    labels: Mapping[str, str]
    timeout: float

    def argv(self, release: Release) -> list[str]:
        return commands.run_job(
            self.target,
            name=self.job,
            image=release.images[self.image],
            command=list(self.command),
            networks=list(self.networks),
            secrets=self.secrets,
            env=self.env,
            labels=self.labels,
        )

    def describe(self) -> str:
        return f"{shlex.join(self.argv_shown)}  (then wait, at most {self.timeout:g}s)"

    @property
    def argv_shown(self) -> list[str]:
        return self.argv(Release("", {self.image: f"<{self.image} image of this release>"}))


@dataclass(frozen=True)
class Prune:
    """Remove the secrets of a scope (a branch slug, or `shared`) and the configs of its
    stacks that the rendered stacks no longer name."""

    target: str
    app: str
    scope: str
    stacks: tuple[str, ...]
    keep: frozenset[str]

    def describe(self) -> str:
        return (
            f"remove old secrets of {self.app}/{self.scope} and old configs of "
            f"{', '.join(self.stacks)} (Swarm refuses to remove one a service still uses)"
        )


def run(argv: list[str], stdin_secret: str | None = None, done_if: str | None = None) -> Command:
    return Command(tuple(argv), stdin_secret, done_if)
