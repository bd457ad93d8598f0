"""The benchmark's arithmetic, pure: when a change went live, how long it took, where a
swarm-deploy deploy spends its time, and how the strategies compare.

Time to live is the same moment for every strategy: from the command's start until no
new request can reach the old release any more. swarm-deploy says so itself: its
`switch` step ends once nginx sends to the new colour only, verified through the public
route. Swarm's own updates say it through their tasks: every task of the changed
services runs the new image and none of the old runs (`serves_only`). Total is until the
command returns (swarm-deploy: once live and recorded; `--detach=false`: Swarm's monitor);
swarm-deploy's old colour is removed later by the drain job it hands off (`removed`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SWITCH = "switch"
# the parts of a deploy that no step accounts for: before its first step (the lock, the
# facts, the plan), between two steps, after its last (the lock's release)
BEFORE, BETWEEN, AFTER = "before the steps", "between steps", "after the steps"
OUTSIDE = (BEFORE, BETWEEN, AFTER)


@dataclass(frozen=True)
class StepTime:
    """One step a deploy ran, as the reporter saw it begin and end (wall clock)."""

    phase: str
    title: str
    begin: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.begin


@dataclass(frozen=True)
class Change:
    """One change of the live release: the command's start and return, when the new
    release went live (None: never), the steps it reported and when its drain job had
    removed the old release (swarm-deploy's only; None: not watched, or never)."""

    strategy: str
    nodes: int
    label: str
    start: float
    end: float
    live: float | None
    steps: tuple[StepTime, ...] = ()
    removed: float | None = None

    @property
    def time_to_live(self) -> float | None:
        return None if self.live is None else self.live - self.start

    @property
    def total(self) -> float:
        return self.end - self.start

    @property
    def until_removed(self) -> float | None:
        """Seconds from the command's start until the old release was gone."""
        return None if self.removed is None else self.removed - self.start

    @property
    def window(self) -> tuple[float, float]:
        """When the change can touch requests: from its switch on (before it, the old
        colour serves alone), or the whole command when it reported no switch; until the
        command returns or, later, the old release is removed."""
        switch = [s.begin for s in self.steps if s.phase == SWITCH]
        return (switch[0] if switch else self.start, max(self.end, self.removed or self.end))

    def by_phase(self) -> dict[str, float]:
        """Seconds per phase (its steps summed), phases in the order they first ran,
        then what no step accounts for: before the first, between, after the last."""
        seconds: dict[str, float] = {}
        for step in self.steps:
            seconds[step.phase] = seconds.get(step.phase, 0.0) + step.seconds
        before = self.steps[0].begin - self.start if self.steps else self.total
        after = self.end - self.steps[-1].end if self.steps else 0.0
        between = self.total - sum(seconds.values()) - before - after
        return {**seconds, BEFORE: before, BETWEEN: between, AFTER: after}


def switched(steps: Sequence[StepTime]) -> float | None:
    """When a deploy went live: the end of its last step whose phase is `switch` (None
    when none ran: it stopped before, or the release was live already)."""
    ends = [s.end for s in steps if s.phase == SWITCH]
    return max(ends) if ends else None


@dataclass(frozen=True)
class Spread:
    median: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        return cls(statistics.median(values), max(values)) if values else None

    def __str__(self) -> str:
        return f"{self.median:.1f} / {self.max:.1f}"


@dataclass(frozen=True)
class Share:
    """A phase's part of a deploy: median seconds and median % of each deploy's total,
    counting 0 where it did not run; `ran`: in how many of the deploys it ran."""

    phase: str
    seconds: float
    percent: float
    ran: int


def shares(changes: Sequence[Change]) -> list[Share]:
    """Each phase's share over the deploys, in the order the phases first ran; what no
    step accounts for last."""
    spent = [change.by_phase() for change in changes]
    phases = list(dict.fromkeys(p for seconds in spent for p in seconds if p not in OUTSIDE))
    found = []
    for phase in [*phases, *OUTSIDE]:
        seconds = [s.get(phase, 0.0) for s in spent]
        percent = [100 * s.get(phase, 0.0) / c.total for s, c in zip(spent, changes, strict=True)]
        found.append(
            Share(
                phase,
                statistics.median(seconds),
                statistics.median(percent),
                sum(phase in s for s in spent),
            )
        )
    return found


def serves_only(tasks: Iterable[Mapping[str, Any]], wanted: Mapping[str, tuple[str, int]]) -> bool:
    """Whether each service of `wanted` (its ID: the new image, its replicas) runs at least
    its replicas of the new image and no task of another: no request can reach the old
    release. A task the manager is stopping still counts while it runs: it may answer."""
    running: dict[str, list[str]] = {service: [] for service in wanted}
    for task in tasks:
        service = task.get("ServiceID", "")
        if service in running and task["Status"]["State"] == "running":
            running[service].append(task["Spec"]["ContainerSpec"]["Image"])
    return all(
        images.count(wanted[service][0]) >= wanted[service][1]
        and all(image == wanted[service][0] for image in images)
        for service, images in running.items()
    )


def release_stack(
    stack: Mapping[str, Any],
    images: Mapping[str, str],
    version: str,
    replicas: Mapping[str, int],
) -> dict[str, Any]:
    """A rendered colour stack file changed in place to another release: its services'
    images and APP_VERSION, each service at the replicas it runs now (a rendered file
    holds a singleton at 0 until the switch)."""
    services = {}
    for name, service in stack["services"].items():
        changed = dict(service)
        if name in images:
            changed["image"] = images[name]
        environment = service.get("environment")
        if isinstance(environment, Mapping) and "APP_VERSION" in environment:
            changed["environment"] = {**environment, "APP_VERSION": version}
        if name in replicas:
            changed["deploy"] = {**service.get("deploy", {}), "replicas": replicas[name]}
        services[name] = changed
    return {**stack, "services": services}


def ratio(value: float | None, base: float | None) -> str:
    """`value` against swarm-deploy's `base`: `x2.1`; with a base of 0, both counts."""
    if value is None or base is None:
        return "-"
    if base == 0:
        return "x1.0" if value == 0 else f"{value:g} vs 0"
    return f"x{value / base:.1f}"
