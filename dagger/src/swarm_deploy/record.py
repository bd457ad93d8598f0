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
    # by kind, the version (data_version) of each data job the plan skipped, or would run
    # against the service that ran when it was made: the next deploy skips a job of the same
    data: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def argv(
        self, release: Release, ensured: Mapping[str, str] = MappingProxyType({})
    ) -> list[str]:
        """`ensured`: the versions of the data jobs this deploy ran, with the service each
        found (the deployer's; it names the service a first deploy created)."""
        labels = state_labels(
            self.request, release, self.colour, self.edge_hash, self.facts, self.fingerprint
        )
        labels |= {label(key): value for key, value in self.claims.items()}
        labels |= {data_label(kind): version for kind, version in {**self.data, **ensured}.items()}
        # a label is kept until removed: an image an older release had is no image of these,
        # the version of a data job the branch no longer runs vouches for nothing
        stale = [
            key
            for key in self.facts.state
            if key.startswith((label("image."), label("previous."), label("data.")))
            and key not in labels
        ]
        return commands.service_label(self.target, self.edge_service, labels, stale)

    def describe(self) -> str:
        return shlex.join(self.argv(self.request.release)) + (
            "  (images as pinned digests; the version of each data job run, with the ID of "
            "the service it found)"
        )


def data_label(kind: str) -> str:
    """The edge's label that records the version of the branch's data job of `kind`."""
    return label(f"data.{kind}")


def data_version(inputs: str, service_id: str) -> str:
    """What a data job ensured: its inputs (deploy_steps.data_inputs) against the shared
    service of that ID (one removed and created again may hold nothing of the branch)."""
    return hashlib.sha256(f"{inputs}\0{service_id}".encode()).hexdigest()[:12]


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
