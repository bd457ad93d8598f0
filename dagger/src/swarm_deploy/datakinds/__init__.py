"""The data kinds, one module each: adding one is a module here (its scripts under
scripts/), its entry in KINDS, and its service's block in stacks/shared.yml."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from swarm_deploy.datakinds import mongo, postgres, redis
from swarm_deploy.datakinds.kind import DataKind

# In this order a service's environment lists them, and plans and destroy take them.
KINDS: Mapping[str, DataKind] = MappingProxyType(
    {kind.name: kind for kind in (postgres.KIND, mongo.KIND, redis.KIND)}
)
# Per-branch credentials derived from a shared admin secret: key -> kind.
DERIVED: Mapping[str, str] = MappingProxyType({k.branch_key: k.name for k in KINDS.values()})

__all__ = ["DERIVED", "KINDS", "DataKind"]
