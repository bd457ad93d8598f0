"""Which colour of a branch is live, decided from what its edge serves. Pure.

Three things say which colour is live, and an interrupted deploy can leave them
disagreeing: the colour nginx answers with (its `X-Swarm-Deploy-Colour` header, probed
through the public route inside the edge), the colour its live/ directory names (the file
live/blue or live/green, which nginx tests on every request: the two differ only in an
nginx whose nginx.conf predates that, or across nginx tasks on different nodes), and
the labels the last deploy recorded on the edge service. What users get is what nginx
serves, so that wins, as long as that colour's stack exists; live/ and the labels are
repaired to match it, never built on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from swarm_deploy.naming import COLOURS, label

# what a deploy records about a release, and keeps under `previous.` for rollback
RELEASE_KEYS = ("release", "image", "deployed-at", "live-colour")


@dataclass(frozen=True)
class ColourStack:
    """A colour's stack as it runs: its release label, each service's image, and the
    replicas of its singletons."""

    release: str | None
    images: Mapping[str, str]
    singletons: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Replica:
    """What one nginx task serves, and which colour its live/ names."""

    served: str | None
    named: str | None


@dataclass(frozen=True)
class Observed:
    """What a deploy, status or rollback read of one branch's edge and colours.

    `served`: the probe's answer (a colour, or None for none); `reachable`: whether the
    probe and live/ could be read at all (an nginx that is down cannot say)."""

    labels: Mapping[str, str]
    stacks: Mapping[str, ColourStack]
    reachable: bool = False
    served: str | None = None
    named: str | None = None
    # each nginx task by name, when they were read: `served` and `named` are the first's
    replicas: Mapping[str, Replica] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Truth:
    """The live colour, the labels that describe it, and what disagreed."""

    live: str | None
    state: Mapping[str, str]
    # labels to write so the edge service says what is true (empty: they already do)
    relabel: Mapping[str, str]
    # the colour live/ must name, when it names another (None: it is right)
    refile: str | None
    notes: tuple[str, ...]


def reconcile(observed: Observed) -> Truth:
    labelled = observed.labels.get(label("live-colour"))
    notes = []
    served = observed.served
    split = len({r.served for r in observed.replicas.values()}) > 1
    if observed.reachable and split:
        # users get both colours; the recorded one, if one task still serves it, is kept
        # (the next deploy switches from it), else the first task's
        shown = ", ".join(f"{n} {r.served or 'no colour'}" for n, r in observed.replicas.items())
        if labelled in {r.served for r in observed.replicas.values()}:
            served = labelled
        notes.append(
            f"the nginx tasks serve different colours ({shown}): {served or 'no colour'} is "
            "taken as live, and every task's live/ is made to name it"
        )
    if observed.reachable:
        live = served if served in observed.stacks else None
        if served is not None and live is None:
            notes.append(f"nginx serves {served}, whose stack is gone: no colour is live")
    else:
        live = observed.named or labelled
        live = live if live in observed.stacks else None
        source = "live/" if observed.named else "labels"
        notes.append(f"could not read what nginx serves; using the {source}")
    state = dict(observed.labels)
    relabel: dict[str, str] = {}
    if live is not None and live != labelled:
        relabel = recovered_labels(observed.labels, live, observed.stacks[live])
        state |= relabel
        notes.append(
            f"nginx serves {live} (release {relabel[label('release')]}) but the labels say "
            f"{labelled or 'none'}: the labels are repaired to what users get"
        )
    refile = None
    if observed.reachable and observed.named != live:
        refile = live or "none"
        notes.append(
            f"live/ names {observed.named or 'no colour'} but nginx serves "
            f"{live or 'no colour'}: live/ is made to name what users get"
        )
    elif observed.reachable and any(
        (r.served, r.named) != (live, live) for r in observed.replicas.values()
    ):
        refile = live or "none"
        if not split:
            notes.append(
                f"the live/ of an nginx task does not name {live or 'no colour'}: "
                "every task's live/ is made to name it"
            )
    return Truth(live, MappingProxyType(state), MappingProxyType(relabel), refile, tuple(notes))


def recovered_labels(labels: Mapping[str, str], live: str, stack: ColourStack) -> dict[str, str]:
    """The labels a deploy of `live` would have recorded, from its running stack; what
    the labels described before becomes `previous.` (rollback goes back one release)."""
    recovered = {
        label("live-colour"): live,
        label("release"): stack.release or "unknown",
        label("deployed-at"): "",
        label("deployed-by"): "recovered from what nginx serves",
        **{label(f"image.{name}"): ref for name, ref in stack.images.items()},
    }
    if labels.get(label("release")) not in (None, stack.release):
        recovered |= as_previous(labels)
    return recovered


def as_previous(labels: Mapping[str, str]) -> dict[str, str]:
    """A release's labels, kept under `previous.` once another release replaces it."""
    return {
        label(f"previous.{key.removeprefix(label(''))}"): value
        for key, value in labels.items()
        if key.removeprefix(label("")).split(".")[0] in RELEASE_KEYS
    }


def leftovers(live: str | None, stacks: Mapping[str, ColourStack]) -> list[str]:
    """Colours whose stack runs although they are not live."""
    return [colour for colour in COLOURS if colour in stacks and colour != live]
