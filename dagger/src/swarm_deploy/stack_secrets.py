"""Which Swarm secrets a branch's stacks use, each named by the sha256 of its value.

Per-branch database passwords are derived (HMAC of the admin password and the role
name), so every deployer computes the same password and no state is kept anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from swarm_deploy.config import Branch, Config
from swarm_deploy.errors import SecretSourceError
from swarm_deploy.secrets import SecretValue

UNRESOLVED = "unresolved"
# Per-branch credentials derived from a shared admin secret: key -> shared kind.
DERIVED = {"pg_password": "postgres", "mongo_password": "mongo", "redis_password": "redis"}


@dataclass(frozen=True)
class StackSecret:
    """A secret as a stack mounts it: /run/secrets/<key>, backed by `swarm_name`."""

    key: str
    swarm_name: str
    source: str
    value: SecretValue | None

    @property
    def resolved(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class BranchSecrets:
    """The shared stack's secrets and the branch's own, by key."""

    shared: Mapping[str, StackSecret]
    branch: Mapping[str, StackSecret]

    def all(self) -> list[StackSecret]:
        return [*self.shared.values(), *self.branch.values()]

    def unresolved(self) -> list[StackSecret]:
        return [s for s in self.all() if not s.resolved]

    def warnings(self) -> tuple[str, ...]:
        """One line per value that cannot be read (derived ones follow their admin secret)."""
        return tuple(
            f"secret {s.key}: value {s.source} is not available; its name ends in "
            f"'_{UNRESOLVED}' and deploy would stop before changing anything"
            for s in self.unresolved()
            if not s.source.startswith("derived")
        )

    def require_all(self) -> None:
        """Raise, naming every missing source, unless every value could be read."""
        missing = self.unresolved()
        if missing:
            lines = "\n".join(f"  - {s.key}: value {s.source} is not available" for s in missing)
            raise SecretSourceError(
                f"{len(missing)} secret(s) cannot be read, so nothing was changed:\n{lines}\n"
                "provide them (see secrets: in the config) and run again"
            )


def resolve(
    config: Config, branch: Branch, environ: Mapping[str, str] | None = None
) -> BranchSecrets:
    """Read every secret the branch's stacks need; a missing source leaves it unresolved."""
    values: dict[str, SecretValue | None] = {}
    for name, source in config.secrets.items():
        try:
            values[name] = source.read(environ, base=config.root)
        except SecretSourceError:
            values[name] = None

    def describe(name: str) -> str:
        return f"from {config.secrets[name].describe()}"

    shared: dict[str, StackSecret] = {}
    for service in config.shared.values():
        if service.admin_password is not None:
            key = service.admin_password
            shared[key] = _secret(key, config.shared_names.secret, describe(key), values[key])

    branch_secrets: dict[str, StackSecret] = {}
    used_kinds = {kind for s in config.services.values() for kind in s.uses}
    for key, kind in DERIVED.items():
        admin = config.shared[kind].admin_password if kind in config.shared else None
        if kind in used_kinds and admin is not None:
            admin_value = values[admin]
            derived = (
                SecretValue(
                    hmac.new(admin_value.reveal(), branch.names.role.encode(), hashlib.sha256)
                    .hexdigest()[:40]
                    .encode()
                )
                if admin_value is not None
                else None
            )
            branch_secrets[key] = _secret(
                key,
                branch.names.secret,
                f"derived from {admin} ({config.secrets[admin].describe()})",
                derived,
            )
    for app_service in config.services.values():
        for key in app_service.secrets:
            branch_secrets[key] = _secret(key, branch.names.secret, describe(key), values[key])
    return BranchSecrets(shared, dict(sorted(branch_secrets.items())))


def _secret(
    key: str, name_for: Callable[[str, str], str], source: str, value: SecretValue | None
) -> StackSecret:
    version = value.fingerprint() if value is not None else UNRESOLVED
    return StackSecret(key, name_for(key, version), source, value)
