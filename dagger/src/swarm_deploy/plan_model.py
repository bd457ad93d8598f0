"""A plan: what the user asked for (`Request`), the steps, and what the target held."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby
from typing import Any

from swarm_deploy.actions import (
    Command,
    EnsureData,
    FinishDrain,
    HandOffDrain,
    HealthGate,
    Migrate,
    NginxTest,
    PinDigests,
    Pipe,
    Prune,
    RemoveIfPresent,
    RenderFiles,
    RewriteLive,
    RunJob,
    Switch,
    WaitConverged,
    WaitGone,
)
from swarm_deploy.certificates import Certificates
from swarm_deploy.config import Branch
from swarm_deploy.plan_facts import Facts
from swarm_deploy.record import Record
from swarm_deploy.render import Release

Action = (
    Command | Pipe | PinDigests | RenderFiles | WaitConverged | RunJob | NginxTest | WaitGone
    | RemoveIfPresent | Migrate | HealthGate | Switch | RewriteLive | Record | Prune
    | HandOffDrain | FinishDrain | EnsureData
)  # fmt: skip


class Phase(StrEnum):
    """What a step is to the deployer; plans print it, and the deployer recognises a
    step by it (what a stopped deploy undoes or finishes)."""

    REPAIR = "repair"
    BUILD = "build"
    PUBLISH = "publish"
    TRANSFER = "transfer"
    RENDER = "render"
    NGINX = "nginx"
    SECRETS = "secrets"
    # changes what every branch uses: shared secrets, the shared stack and its configs
    SHARED = "shared"
    DATABASES = "databases"
    EDGE = "edge"
    MIGRATE = "migrate"
    COLOUR = "colour"
    GATE = "gate"
    SWITCH = "switch"
    RECORD = "record"
    SINGLETONS = "singletons"
    DRAIN = "drain"
    PRUNE = "prune"
    # destroy's
    STACKS = "stacks"
    NETWORK = "network"
    DATA = "data"


SHARED = Phase.SHARED
# What runs under the shared lock: those steps, and the data jobs, which log in with a
# shared service's admin secret (a rotation between the two would lock them out).
UNDER_SHARED_LOCK = frozenset({Phase.SHARED, Phase.DATABASES, Phase.DATA})


@dataclass(frozen=True)
class Step:
    """One step of a plan; `skipped` says why a step that need not run is not run (what
    it would ensure is already so): such a step has no actions, and is listed all the same."""

    phase: Phase
    title: str
    actions: tuple[Action, ...]
    note: str = ""
    skipped: str = ""

    def skip(self, why: str) -> Step:
        """This step, not run because `why`."""
        return Step(self.phase, self.title, (), self.note, why)


# How a plan and a deploy show a skipped step, before its reason.
SKIPPED = "unchanged, skipped"


def lock_runs(steps: Sequence[Step]) -> list[tuple[bool, list[tuple[int, Step]]]]:
    """The steps, numbered from 1, in contiguous runs that do or do not hold the shared
    lock (one hold per run)."""
    numbered = enumerate(steps, start=1)
    return [
        (shared, list(run))
        for shared, run in groupby(numbered, key=lambda item: item[1].phase in UNDER_SHARED_LOCK)
    ]


@dataclass(frozen=True)
class Request:
    """What the user asked for, beyond the branch."""

    target: str
    release: Release
    source_url: str | None = None
    transfer: bool = False
    force: bool = False
    deployed_by: str = ""
    deployed_at: str = ""
    # images already in the registry, pinned (--image, or a rollback's): nothing to build
    prebuilt: bool = False
    # the release the live one replaced: migrations do not run backwards
    rollback: bool = False
    # change the shared stack although the branch's rule does not say shared: true
    update_shared: bool = False
    # sha256 of what the builds read (sources.build_inputs), when this deploy builds
    inputs: str = ""


@dataclass(frozen=True)
class Plan:
    app: str
    branch: Branch
    request: Request
    new_colour: str
    old_colour: str | None
    facts: Facts
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()
    # the release is live: nothing to do, or (with steps) only repairs
    up_to_date: bool = False
    repairs_only: bool = False
    # where users reach the branch (public_urls)
    urls: tuple[str, ...] = ()
    # the certificates the deploy makes Traefik order (None without Traefik)
    certificates: Certificates | None = None

    @property
    def target(self) -> str:
        return self.request.target

    @property
    def release(self) -> Release:
        return self.request.release

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
            "up_to_date": self.up_to_date,
            "repairs_only": self.repairs_only,
            "urls": list(self.urls),
            "certificates": None
            if self.certificates is None
            else {
                "new": list(self.certificates.new),
                "wildcard": self.certificates.wildcard,
                "this_week": self.certificates.this_week,
                "weekly_limit": self.certificates.limit,
            },
            "warnings": list(self.warnings),
            "steps": [
                {
                    "phase": step.phase,
                    "title": step.title,
                    "note": step.note,
                    "skipped": step.skipped,
                    "actions": [_action_json(action) for action in step.actions],
                }
                for step in self.steps
            ],
        }


def _action_json(action: Action) -> dict[str, Any]:
    result: dict[str, Any] = {"kind": type(action).__name__, "describe": action.describe()}
    if isinstance(action, Command):
        result["argv"] = list(action.argv)
        result["stdin_secret"] = action.stdin_secret
    if isinstance(action, RunJob):
        result["argv"] = list(action.argv)
    if isinstance(action, NginxTest | EnsureData):
        result["argv"] = list(action.job.argv)
    return result
