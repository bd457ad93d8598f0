"""What the target looked like when a plan was made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from swarm_deploy.claims import OtherBranch, RunningShared
from swarm_deploy.naming import label
from swarm_deploy.truth import ColourStack


@dataclass(frozen=True)
class Facts:
    """What the target looked like when the plan was made; `read` is False offline."""

    read: bool = False
    live_colour: str | None = None
    state: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    existing_secrets: frozenset[str] = frozenset()
    nodes: int = 1
    # each colour whose stack runs; labels that would make the edge's say what nginx
    # serves; the colour live/ should name when it names another (truth.py)
    stacks: Mapping[str, ColourStack] = field(default_factory=lambda: MappingProxyType({}))
    relabel: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    refile: str | None = None
    # the app's other branches on the target, and its shared stack's services by kind
    others: tuple[OtherBranch, ...] = ()
    shared_stack: Mapping[str, RunningShared] = field(default_factory=lambda: MappingProxyType({}))
    # when each edge service of the app (this branch's too) was created, by name
    edges_created: Mapping[str, datetime] = field(default_factory=lambda: MappingProxyType({}))
    # the colour stack a drain handed off by the last deploy is to remove, while its job
    # is on the Swarm (actions.HandOffDrain)
    drain: str | None = None

    @property
    def live_release(self) -> str | None:
        return self.state.get(label("release"))

    @property
    def edge_hash(self) -> str | None:
        return self.state.get(label("edge-hash"))

    @property
    def fingerprint(self) -> str | None:
        return self.state.get(label("fingerprint"))
