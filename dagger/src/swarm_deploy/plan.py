"""Facts about the target + the config -> the ordered steps of a deploy. Pure.

`swarm-deploy plan` prints these steps; `deploy` runs the very same objects through
the one executor. An action is either a docker argv (`Command`) or a typed check the
executor performs through the Engine API (waiting, gating, switching).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from swarm_deploy import commands
from swarm_deploy.config import Branch, Config, Gate
from swarm_deploy.render import EDGE_STACK, SHARED_STACK, Release, colour_stack_file
from swarm_deploy.stack_secrets import DERIVED, BranchSecrets, StackSecret

WORKDIR = ".swarm-deploy"


@dataclass(frozen=True)
class Command:
    """A docker command; `stdin_secret` names the secret whose value goes to its stdin."""

    argv: tuple[str, ...]
    stdin_secret: str | None = None

    def describe(self) -> str:
        shown = shlex.join(self.argv)
        return f"{shown} < secret {self.stdin_secret}" if self.stdin_secret else shown


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
class EnsureDatabases:
    """Create the branch's role and databases if missing, as a one-shot job."""

    target: str
    kind: str
    role: str
    databases: tuple[str, ...]
    password_secret: str

    def describe(self) -> str:
        return (
            f"one-shot job on the shared network: {self.kind} role {self.role} "
            f"(password from secret {self.password_secret}) owning "
            f"{', '.join(self.databases)}; other branches' roles cannot connect"
        )


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
            f"every {self.colour} task running (healthy where the image has a HEALTHCHECK), "
            f"then {self.gate.consecutive} consecutive 200s from {', '.join(self.paths)} "
            f"through {self.edge_service}'s preview route, every {self.gate.interval:g}s, "
            f"at most {self.gate.timeout:g}s; a failed task ends the gate at once"
        )


@dataclass(frozen=True)
class Switch:
    """Point the edge at a colour: rewrite live/colour.conf, nginx -t, reload, verify."""

    target: str
    edge_service: str
    colour: str
    paths: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"write live/colour.conf = {self.colour} in {self.edge_service}, nginx -t, "
            f"nginx -s reload (graceful), then check {', '.join(self.paths)} answer from "
            f"{self.colour} through the public route"
        )


@dataclass(frozen=True)
class Pause:
    seconds: float
    reason: str

    def describe(self) -> str:
        return f"wait {self.seconds:g}s: {self.reason}"


Action = Command | WaitConverged | EnsureDatabases | HealthGate | Switch | Pause


@dataclass(frozen=True)
class Step:
    phase: str
    title: str
    actions: tuple[Action, ...]
    note: str = ""


@dataclass(frozen=True)
class Facts:
    """What the target looked like when the plan was made; `read` is False offline."""

    read: bool = False
    live_colour: str | None = None
    existing_secrets: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Plan:
    app: str
    branch: Branch
    target: str
    release: Release
    new_colour: str
    old_colour: str | None
    facts: Facts
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "branch": self.branch.name,
            "slug": self.branch.slug,
            "host": self.branch.host,
            "target": self.target,
            "release": self.release.version,
            "images": dict(self.release.images),
            "new_colour": self.new_colour,
            "old_colour": self.old_colour,
            "facts_read": self.facts.read,
            "warnings": list(self.warnings),
            "steps": [
                {
                    "phase": step.phase,
                    "title": step.title,
                    "note": step.note,
                    "actions": [_action_json(action) for action in step.actions],
                }
                for step in self.steps
            ],
        }


def plan_lines(plan: Plan) -> list[tuple[str, str]]:
    """The steps as (style, text) lines: the CLI prints them styled, Dagger returns the text."""
    branch = plan.branch
    live = (
        f"{plan.old_colour} is live; {plan.new_colour} replaces it"
        if plan.old_colour
        else f"{plan.new_colour} goes live"
    )
    if not plan.facts.read:
        live += " (target not read: this offline plan assumes no colour is live yet)"
    lines = [("bold", f"Plan: deploy {plan.app} branch {branch.name!r} to {plan.target}")]
    for label, value in (
        ("host", f"https://{branch.host}"),
        ("slug", branch.slug),
        ("stacks", f"{branch.names.edge_stack}, {branch.names.colour_stack('blue')} | green"),
        ("release", plan.release.version),
        ("colour", live),
    ):
        lines.append(("", f"  {label:<8} {value}"))
    for number, step in enumerate(plan.steps, start=1):
        lines.append(("", ""))
        lines.append(("bold", f"{number:>3}. [{step.phase}] {step.title}"))
        if step.note:
            lines.append(("dim", f"       {step.note}"))
        for action in step.actions:
            prefix = "$ " if isinstance(action, Command) else "-> "
            lines.append(("", f"       {prefix}{action.describe()}"))
    return lines


def _action_json(action: Action) -> dict[str, Any]:
    result: dict[str, Any] = {"kind": type(action).__name__, "describe": action.describe()}
    if isinstance(action, Command):
        result["argv"] = list(action.argv)
        result["stdin_secret"] = action.stdin_secret
    return result


def render_dir(branch: Branch) -> str:
    """Where deploy writes the branch's rendered files, relative to the project."""
    return f"{WORKDIR}/{branch.slug}"


def run(argv: list[str], stdin_secret: str | None = None) -> Command:
    return Command(tuple(argv), stdin_secret)


def deploy_plan(
    config: Config,
    branch: Branch,
    release: Release,
    secrets: BranchSecrets,
    *,
    target: str,
    facts: Facts = Facts(),
    source_url: str | None = None,
) -> Plan:
    """The steps that deploy `release` of `branch` to `target`, in order."""
    new = "green" if facts.live_colour == "blue" else "blue"
    old = facts.live_colour
    steps = [
        *_build_steps(config, release, source_url),
        *_secret_steps(target, config.app, "shared", secrets.shared.values(), facts),
        *_shared_steps(config, branch, target),
        *_secret_steps(target, config.app, branch.slug, secrets.branch.values(), facts),
        *_database_steps(config, branch, secrets, target),
        *_blue_green_steps(config, branch, target, new, old),
        _record_step(branch, release, target, new),
    ]
    return Plan(
        config.app, branch, target, release, new, old, facts, tuple(steps), secrets.warnings()
    )


def _build_steps(config: Config, release: Release, source_url: str | None) -> list[Step]:
    labels = {"org.opencontainers.image.revision": release.version}
    if source_url:
        labels["org.opencontainers.image.source"] = source_url
    builds = [
        Step(
            "build",
            f"build {image.name} for {image.platform}",
            (
                run(
                    commands.build(
                        image,
                        context=image.context,
                        dockerfile=f"{image.context}/{image.dockerfile}",
                        ref=release.images[image.name],
                        labels=labels,
                    )
                ),
            ),
        )
        for image in config.images.values()
    ]
    pushes = [
        Step(
            "publish",
            f"push {image.name} and pin its digest",
            (
                run(commands.push(release.images[image.name])),
                run(commands.repo_digests(release.images[image.name])),
            ),
        )
        for image in config.images.values()
    ]
    return builds + pushes


def _secret_steps(
    target: str, app: str, scope: str, secrets: Iterable[StackSecret], facts: Facts
) -> list[Step]:
    steps = []
    for secret in secrets:
        if facts.read and secret.swarm_name in facts.existing_secrets:
            continue
        labels = {
            "swarm-deploy.app": app,
            "swarm-deploy.slug": scope,
            "swarm-deploy.key": secret.key,
        }
        create = run(commands.secret_create(target, secret.swarm_name, labels), secret.key)
        note = f"value {secret.source}" + ("" if facts.read else "; skipped if it exists")
        steps.append(Step("secrets", f"create secret {secret.swarm_name}", (create,), note))
    return steps


def _shared_steps(config: Config, branch: Branch, target: str) -> list[Step]:
    if not config.shared:
        return []
    stack = config.shared_names.stack
    deploy = run(commands.stack_deploy(target, f"{render_dir(branch)}/{SHARED_STACK}", stack))
    return [
        Step(
            "shared",
            f"ensure the shared stack {stack}",
            (deploy, WaitConverged(target, stack, config.gate.timeout)),
            "stateful services update stop-first; unchanged services are not restarted",
        )
    ]


def _database_steps(
    config: Config, branch: Branch, secrets: BranchSecrets, target: str
) -> list[Step]:
    names = branch.names
    return [
        Step(
            "databases",
            f"ensure {kind} role and databases of {branch.slug}",
            (
                EnsureDatabases(
                    target,
                    kind,
                    names.role,
                    tuple(names.database(db) for db in config.shared[kind].databases),
                    secrets.branch[key].swarm_name,
                ),
            ),
        )
        for key, kind in DERIVED.items()
        if key in secrets.branch
    ]


def _blue_green_steps(
    config: Config, branch: Branch, target: str, new: str, old: str | None
) -> list[Step]:
    names = branch.names
    files = render_dir(branch)
    paths = tuple(s.health for s in config.services.values() if s.health)
    singletons = [s.name for s in config.services.values() if s.singleton]
    new_stack = names.colour_stack(new)
    steps = [
        Step(
            "edge",
            f"ensure the edge stack {names.edge_stack}",
            (
                run(commands.stack_deploy(target, f"{files}/{EDGE_STACK}", names.edge_stack)),
                WaitConverged(target, names.edge_stack, config.gate.timeout),
            ),
            "nginx is redeployed only when its own config changed (stop-first: ~0.6 s of 503)",
        ),
        Step(
            "colour",
            f"deploy {new} ({new_stack}), singletons held at 0",
            (
                run(commands.stack_deploy(target, f"{files}/{colour_stack_file(new)}", new_stack)),
                WaitConverged(target, new_stack, config.gate.timeout),
            ),
        ),
        Step(
            "gate",
            f"health gate for {new}",
            (HealthGate(target, names.edge_service, new, paths, config.gate),),
            f"on failure: remove {new_stack}; "
            + (f"{old} stays live" if old else "the branch keeps answering 503 (maintenance)"),
        ),
        Step(
            "switch",
            f"switch {branch.host} to {new}",
            (Switch(target, names.edge_service, new, paths),),
        ),
    ]
    if singletons:
        stops = [] if old is None else [(old, name, 0) for name in singletons]
        starts = [(new, name, 1) for name in singletons]
        moves = tuple(
            run(commands.service_scale(target, names.colour_service(colour, name), replicas))
            for colour, name, replicas in stops + starts
        )
        steps.append(Step("singletons", "move singletons: stop the old, then start the new", moves))
    if old is not None:
        drain = Pause(
            config.edge.drain,
            "the old colour finishes in-flight requests and nginx's DNS cache (5 s) forgets it",
        )
        remove = run(commands.stack_rm(target, names.colour_stack(old)))
        steps.append(Step("drain", f"drain and remove {names.colour_stack(old)}", (drain, remove)))
    return steps


def _record_step(branch: Branch, release: Release, target: str, new: str) -> Step:
    labels = {
        "swarm-deploy.live-colour": new,
        "swarm-deploy.release": release.version,
        **{f"swarm-deploy.image.{name}": ref for name, ref in release.images.items()},
    }
    return Step(
        "record",
        "record the live colour and release on the Swarm",
        (run(commands.service_label(target, branch.names.edge_service, labels)),),
    )
