"""Which Swarm secrets a branch's stacks use, each named by the sha256 of its value.

Per-branch database passwords are derived (HMAC of the admin password and the role
name), so every deployer computes the same password and no state is kept anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from swarm_deploy.config import Branch, Config
from swarm_deploy.datakinds import KINDS
from swarm_deploy.errors import SecretSourceError, SecretValueError
from swarm_deploy.secrets import SecretValue

UNRESOLVED = "unresolved"


@dataclass(frozen=True)
class StackSecret:
    """A secret as a stack mounts it: /run/secrets/<key>, backed by `swarm_name`."""

    key: str
    swarm_name: str
    source: str
    value: SecretValue | None
    # why a value that is there cannot be used (empty, whitespace, too large); never the value
    unusable: str | None = None

    @property
    def resolved(self) -> bool:
        return self.value is not None

    def problem(self) -> str:
        """`value from $VAR is empty`: what is wrong with an unresolved secret."""
        return f"value {self.source} {self.unusable or 'is not available'}"


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
            f"secret {s.key}: {s.problem()}; its name ends in "
            f"'_{UNRESOLVED}' and deploy would stop before changing anything"
            for s in self.unresolved()
            if not s.source.startswith("derived") and s.unusable is None
        )

    def require_usable(self) -> None:
        """Raise, naming each, if a value is there but cannot be used: a plan of it would
        show a secret named after a value no deploy can create."""
        refuse_unusable([s for s in self.all() if s.unusable is not None])

    def require_all(self) -> None:
        """Raise, naming every missing or unusable one, unless every value can be used."""
        problems = self.unresolved()
        if problems:
            lines = "\n".join(f"  - {s.key}: {s.problem()}" for s in problems)
            raise SecretSourceError(
                f"{len(problems)} secret(s) cannot be used, so nothing was changed:\n{lines}\n"
                "provide each value (see secrets: in the config) and run again"
            )


def refuse_unusable(secrets: list[StackSecret]) -> None:
    """Raise SecretValueError listing secrets whose values are there but unusable."""
    if secrets:
        lines = "\n".join(f"  - {s.key}: {s.problem()}" for s in secrets)
        raise SecretValueError(
            f"{len(secrets)} secret value(s) cannot be used:\n{lines}\n"
            "give each its real value (see secrets: in the config); a deploy would stop "
            "before changing anything",
            "; ".join(f"{s.key} {s.unusable}" for s in secrets),
        )


def shared_keys(config: Config) -> tuple[str, ...]:
    """The secrets the shared stack mounts: admin passwords, and Traefik's (a private CA's
    root, the credentials of its DNS provider)."""
    keys = [s.admin_password for s in config.shared.values() if s.admin_password is not None]
    traefik = config.shared.get("traefik")
    keys += traefik.acme.secret_keys if traefik is not None and traefik.acme is not None else ()
    return tuple(dict.fromkeys(keys))


def read_values(
    config: Config, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, SecretValue | None], dict[str, str]]:
    """Every secret's value (None when missing or unusable), and why each unusable one is."""
    values: dict[str, SecretValue | None] = {}
    unusable: dict[str, str] = {}
    for name, source in config.secrets.items():
        try:
            values[name] = source.read(environ, base=config.root)
        except SecretValueError as exc:
            values[name], unusable[name] = None, exc.reason
        except SecretSourceError:
            values[name] = None
    return values, unusable


def check_sources(config: Config, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """`check`: every secret value that is there must be usable. Returns the names of the
    secrets whose value is missing (the deployer's business, not the config's)."""
    values, unusable = read_values(config, environ)
    refuse_unusable(
        [
            StackSecret(name, "", f"from {config.secrets[name].describe()}", None, reason)
            for name, reason in unusable.items()
        ]
    )
    return tuple(name for name, value in values.items() if value is None)


def resolve(
    config: Config, branch: Branch, environ: Mapping[str, str] | None = None
) -> BranchSecrets:
    """Read every secret the branch's stacks need; a missing or unusable value leaves it
    unresolved (a derived one follows its admin secret)."""
    values, unusable = read_values(config, environ)

    def describe(name: str) -> str:
        return f"from {config.secrets[name].describe()}"

    def secret(key: str, name_for: Callable[[str, str], str]) -> StackSecret:
        return _secret(key, name_for, describe(key), values[key], unusable.get(key))

    shared: dict[str, StackSecret] = {}
    for key in shared_keys(config):
        shared[key] = secret(key, config.shared_names.secret)

    branch_secrets: dict[str, StackSecret] = {}
    used_kinds = {kind for s in config.services.values() for kind in s.uses}
    for kind in KINDS.values():
        key = kind.branch_key
        data_service = config.shared.get(kind.name)
        admin = data_service.admin_password if data_service is not None else None
        if kind.name in used_kinds and admin is not None:
            admin_value = values[admin]
            derived = (
                SecretValue(kind.derive(admin_value.reveal(), branch.names.role))
                if admin_value is not None
                else None
            )
            branch_secrets[key] = _secret(
                key,
                branch.names.secret,
                f"derived from {admin} ({config.secrets[admin].describe()})",
                derived,
                unusable.get(admin),
            )
    for app_service in config.services.values():
        for key in app_service.secrets:
            branch_secrets[key] = secret(key, branch.names.secret)
    return BranchSecrets(shared, dict(sorted(branch_secrets.items())))


def _secret(
    key: str,
    name_for: Callable[[str, str], str],
    source: str,
    value: SecretValue | None,
    unusable: str | None = None,
) -> StackSecret:
    version = value.fingerprint() if value is not None else UNRESOLVED
    return StackSecret(key, name_for(key, version), source, value, unusable)
