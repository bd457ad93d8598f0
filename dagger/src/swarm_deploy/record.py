"""What a deploy records on the branch's edge service after a switch: the live colour,
the release, its images and the one it replaced (for rollback), and the fingerprint."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from swarm_deploy import commands
from swarm_deploy.naming import label
from swarm_deploy.plan_facts import Facts
from swarm_deploy.render import Release
from swarm_deploy.truth import as_previous

if TYPE_CHECKING:
    from swarm_deploy.plan_model import Request


@dataclass(frozen=True)
class Record:
    """Label the edge service with what is live; images are written as pinned at run time."""

    target: str
    edge_service: str
    colour: str
    edge_hash: str
    request: Request
    facts: Facts
    # what other deploys read of this branch: the host it serves, the shared services it uses
    claims: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    fingerprint: str = ""

    def argv(self, release: Release) -> list[str]:
        labels = state_labels(
            self.request, release, self.colour, self.edge_hash, self.facts, self.fingerprint
        )
        labels |= {label(key): value for key, value in self.claims.items()}
        # a label is kept until removed: an image an older release had is no image of these
        stale = [
            key
            for key in self.facts.state
            if key.startswith((label("image."), label("previous."))) and key not in labels
        ]
        return commands.service_label(self.target, self.edge_service, labels, stale)

    def describe(self) -> str:
        return shlex.join(self.argv(self.request.release)) + "  (images as pinned digests)"


def deploy_fingerprint(files: Mapping[str, str], request: Request) -> str:
    """sha256 of everything a deploy hands over: the rendered files (images, secrets by
    their value's hash, configs, the release) and what the builds read. The same again
    on the target is the only "nothing to do"."""
    digest = hashlib.sha256()
    for path, content in sorted(files.items()):
        digest.update(f"{path}\0{len(content)}\0{content}".encode("utf-8", "surrogateescape"))
    digest.update(f"inputs\0{request.inputs}\0source\0{request.source_url or ''}".encode())
    return digest.hexdigest()


def state_labels(
    request: Request,
    release: Release,
    colour: str,
    edge_hash: str,
    facts: Facts,
    fingerprint: str = "",
) -> dict[str, str]:
    """What the edge service's labels record after a switch (images by digest once pinned);
    the release it replaces is kept under `previous.` for rollback."""
    labels = {
        label("live-colour"): colour,
        label("release"): release.version,
        label("deployed-at"): request.deployed_at,
        label("deployed-by"): request.deployed_by,
        label("edge-hash"): edge_hash,
        label("fingerprint"): fingerprint,
        **{label(f"image.{name}"): ref for name, ref in release.images.items()},
    }
    previous = {k: v for k, v in facts.state.items() if k.startswith(label("previous."))}
    if facts.live_release and facts.live_release != request.release.version:
        previous = as_previous(facts.state)
    return {**labels, **previous}
