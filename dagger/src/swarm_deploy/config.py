"""swarm-deploy.yml -> frozen, validated objects.

Every error names the key path, the bad value and, for a misspelt key or name,
the closest valid one: `services/backend/port: should be an integer, got 'eighty'`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from swarm_deploy import naming
from swarm_deploy._reader import Node, attempt, collecting
from swarm_deploy.config_settings import Edge, Gate, Limits, Lock, SwarmSettings, Timeouts
from swarm_deploy.config_tls import Acme, TraefikPorts
from swarm_deploy.config_values import HOST_FIELDS, read_target
from swarm_deploy.datakinds import DERIVED, KINDS
from swarm_deploy.errors import (
    BranchNotAllowedError,
    ConfigError,
    ConfigErrors,
    HostConflictError,
)
from swarm_deploy.profiles import Layer, merge_layers, read_layers
from swarm_deploy.secrets import SecretSource

# the settings classes, read by their own module, are part of the model too
__all__ = ("Edge", "Gate", "Limits", "Lock", "SwarmSettings", "Timeouts")

DEFAULT_PLATFORM = "linux/amd64"
DATA_SERVICES = tuple(KINDS)
SHARED_KINDS = (*DATA_SERVICES, "loki", "promtail", "prometheus", "grafana", "traefik")
WITH_DATABASES = tuple(kind.name for kind in KINDS.values() if kind.has_databases)
WITH_ADMIN_PASSWORD = (*DATA_SERVICES, "grafana")


@dataclass(frozen=True)
class Image:
    """An image the pipeline builds: `<registry>/<app>-<name>`."""

    name: str
    context: str
    dockerfile: str = "Dockerfile"
    platform: str = DEFAULT_PLATFORM
    build_args: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Metrics:
    """Where a service serves Prometheus metrics: its branch's agent scrapes every task there."""

    port: int
    path: str = "/metrics"


@dataclass(frozen=True)
class Service:
    """A service of the colour stacks (backend, frontend, bot)."""

    name: str
    image: str
    port: int | None = None
    path: str | None = None
    health: str | None = None
    replicas: int = 1
    singleton: bool = False
    uses: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    command: tuple[str, ...] = ()
    migrate: tuple[str, ...] = ()
    max_per_node: int | None = None
    metrics: Metrics | None = None

    @property
    def routed(self) -> bool:
        """Reached by users through the branch's nginx (and gated through it)."""
        return self.path is not None


@dataclass(frozen=True)
class SharedService:
    """A service of the shared stack (one per VM): databases, observability, Traefik."""

    kind: str
    image: str
    databases: tuple[str, ...] = ()
    admin_password: str | None = None
    # Traefik's only
    acme_email: str | None = None
    ports: TraefikPorts | None = None
    acme: Acme | None = None


@dataclass(frozen=True)
class BranchRule:
    """Which branches may deploy, and the host name each gets."""

    match: str
    host: str = "{slug}"
    production: bool = False
    protected: bool = False
    port: int | None = None
    # its deploys may change the shared stack (default: the production rule's)
    shared: bool = False

    @property
    def fixed_host(self) -> bool:
        """The host is the same for every branch of the rule: no placeholder in it."""
        return HOST_FIELDS.search(self.host) is None

    def captures(self, branch: str) -> tuple[str, ...] | None:
        """The text each `*` matched, or None when the branch does not match."""
        parts = (re.escape(part) for part in self.match.split("*"))
        found = re.fullmatch("(.*?)".join(parts), branch, flags=re.DOTALL)
        return found.groups() if found else None


@dataclass(frozen=True)
class Branch:
    """A branch that its rules allow to deploy, with every name derived from it."""

    names: naming.BranchNames
    rule: BranchRule
    host: str

    @property
    def name(self) -> str:
        return self.names.branch

    @property
    def slug(self) -> str:
        return self.names.slug


@dataclass(frozen=True)
class Config:
    """The whole of swarm-deploy.yml, validated."""

    app: str
    domain: str
    registry: str
    target: str
    images: Mapping[str, Image]
    services: Mapping[str, Service]
    shared: Mapping[str, SharedService]
    branches: tuple[BranchRule, ...]
    secrets: Mapping[str, SecretSource]
    gate: Gate = field(default_factory=Gate)
    timeouts: Timeouts = field(default_factory=Timeouts)
    edge: Edge = field(default_factory=Edge)
    swarm: SwarmSettings = field(default_factory=SwarmSettings)
    lock: Lock = field(default_factory=Lock)
    limits: Limits = field(default_factory=Limits)
    root: Path = Path()

    @property
    def shared_names(self) -> naming.SharedNames:
        return naming.SharedNames(self.app)

    @property
    def slug_budget(self) -> int:
        return naming.slug_budget(
            self.app,
            services=self.services,
            databases=[db for s in self.shared.values() for db in s.databases],
            objects=[*self.secrets, *OBJECT_NAMES],
        )

    def image_repository(self, image: str) -> str:
        return f"{self.registry}/{self.app}-{image}"

    def target_for(self, host: str | None) -> str:
        """Where a command goes: `--host` when given (checked like `target`), else `target`."""
        return read_target(Node(host, "--host")) if host else self.target

    def names(self, branch: str) -> naming.BranchNames:
        """The names a branch has on the target: they come from its slug, not from a rule,
        so a branch whose rule is gone still finds what it left there."""
        return naming.BranchNames.derive(self.app, branch, self.slug_budget)

    def host_port(self, rule: BranchRule) -> bool:
        """The rule's branches publish a port on the node their nginx runs on: one task
        per node can hold it, and clients reach only that node's."""
        return rule.port is not None and self.swarm.publish_mode == "host"

    def edge_replicas(self, rule: BranchRule) -> int:
        """Tasks of the nginx of the rule's branches: `edge/replicas`, else two behind
        Traefik (it balances over them, checks them and retries on the other), else one."""
        if self.edge.replicas is not None:
            return self.edge.replicas
        return 2 if "traefik" in self.shared and not self.host_port(rule) else 1

    def rule(self, branch: str) -> BranchRule | None:
        """The first rule that matches the branch, or None when no rule does."""
        return next((r for r in self.branches if r.captures(branch) is not None), None)

    @property
    def shared_hosts(self) -> Mapping[str, str]:
        """Host names the shared stack serves through Traefik, by service."""
        if "traefik" in self.shared and "grafana" in self.shared:
            return {"grafana": f"grafana.{self.domain}"}
        return {}

    def claimed_hosts(self) -> dict[str, str]:
        """Host -> who holds it whatever branches are live: the shared stack's services, and
        each rule with a fixed host."""
        claimed = {host: f"the shared {kind}" for kind, host in self.shared_hosts.items()}
        for rule in self.branches:
            if rule.fixed_host:
                claimed.setdefault(self.host(rule), f"branch rule '{rule.match}'")
        return claimed

    def branch(self, name: str) -> Branch:
        """The branch as the first matching rule allows it; an error lists the rules, or
        names who already holds the host the rule gives it."""
        names = self.names(name)
        for rule in self.branches:
            captures = rule.captures(name)
            if captures is None:
                continue
            branch = Branch(names, rule, self.host(rule, names, captures))
            holder = None if rule.fixed_host else self.claimed_hosts().get(branch.host)
            if holder is not None:
                raise HostConflictError(
                    f"branch {name!r} would be served at {branch.host}, which belongs to "
                    f"{holder}; change the host of rule '{rule.match}' in the config so that "
                    "its branches cannot take that name"
                )
            return branch
        rules = "\n".join(f"  - {r.match}" for r in self.branches)
        raise BranchNotAllowedError(
            f"branch {name!r} matches no rule under 'branches' in the config:\n{rules}\n"
            "deploy one of those, or add a rule for it"
        )

    def host(
        self,
        rule: BranchRule,
        names: naming.BranchNames | None = None,
        captures: tuple[str, ...] = (),
    ) -> str:
        """The host a rule gives a branch: `captures` are what each `*` matched (a fixed
        host needs neither the branch's names nor captures)."""
        values = {str(i + 1): c for i, c in enumerate(captures)}
        if names is not None:
            values["slug"] = names.slug
        if rule.host == "@":
            return self.domain
        label = HOST_FIELDS.sub(lambda m: values[m.group(1)], rule.host)
        # a label that is not already a valid DNS label is folded and hashed like a branch
        label = label if naming.is_dns_label(label) else naming.slug(label)
        return f"{label}.{self.domain}"


# Names of the Swarm configs and derived secrets a branch gets besides its own secrets
# (for the length budget).
OBJECT_NAMES = ("nginx_conf", "maintenance", "relay", "agent", *DERIVED)


def load(path: Path | str) -> Config:
    """Read and validate a config file (a profile merged onto its base)."""
    path = Path(path)
    return parse_layers(read_layers(path), root=path.resolve().parent)


def parse(text: str, root: Path = Path(), source: str = "swarm-deploy.yml") -> Config:
    """Validate config text; relative paths in it are relative to `root`."""
    return parse_layers([Layer(source, text)], root)


def parse_layers(layers: Sequence[Layer], root: Path = Path()) -> Config:
    """Validate a config read from files merged in order (a profile onto its base). Every
    mistake is found in one reading: one raises ConfigError, several ConfigErrors."""
    # the reader builds the classes above: imported here, where they exist already
    from swarm_deploy.config_read import read_config  # noqa: PLC0415

    merged = merge_layers(layers)
    data = merged.data
    with collecting() as found:
        config = attempt(lambda: read_config(data, root), None)
    # in the order of the file's sections, as a compiler lists them
    order = list(data) if isinstance(data, dict) else []

    def rank(error: ConfigError) -> int:
        section = error.at.split("/")[0]
        return order.index(section) if section in order else -1

    errors = [merged.locate(error) for error in sorted(found, key=rank)]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)
    assert config is not None
    return config
