"""swarm-deploy.yml -> frozen, validated objects.

Every error names the key path, the bad value and, for a misspelt key or name,
the closest valid one: `services/backend/port: should be an integer, got 'eighty'`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from swarm_deploy import grammars, naming
from swarm_deploy._reader import (
    Node,
    attempt,
    collecting,
    describe,
    recorded,
    report,
    settle,
)
from swarm_deploy.datakinds import DERIVED, KINDS
from swarm_deploy.errors import (
    BranchNotAllowedError,
    ConfigError,
    ConfigErrors,
    HostConflictError,
)
from swarm_deploy.profiles import Layer, merge_layers, read_layers
from swarm_deploy.secrets import SecretSource

T = TypeVar("T")

DEFAULT_PLATFORM = "linux/amd64"
DATA_SERVICES = tuple(KINDS)
SHARED_KINDS = (*DATA_SERVICES, "loki", "promtail", "prometheus", "grafana", "traefik")
WITH_DATABASES = tuple(kind.name for kind in KINDS.values() if kind.has_databases)
WITH_ADMIN_PASSWORD = (*DATA_SERVICES, "grafana")

# Names become parts of image references, Swarm service, secret and config names and
# stack file keys: letters and digits joined by single '_' suit every one (grammars.py);
# `bot_` or `a___b` would make an image reference no registry takes.
_NAME = r"(?=.{1,30}$)[a-z][a-z0-9]*(?:_[a-z0-9]+)*"
_NAME_HINT = (
    "should be a name of lower-case letters and digits, starting with a letter, with "
    "single '_' between words, at most 30 characters (it becomes part of image, service "
    "and secret names)"
)
_APP = r"[a-z][a-z0-9]{0,19}"
_ENV_VAR = r"[A-Za-z_][A-Za-z0-9_]*"
_DOMAIN = r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
_REGISTRY = r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*"
_SSH_TARGET = r"ssh://([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:[0-9]{1,5})?"
_PLATFORM = r"linux/(amd64|arm64|arm/v7)"
_URL_PATH = r"/[A-Za-z0-9._~/-]*"
EDGE_HEALTH = "/healthz"
_SUBNET = r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}"
_LABEL_KEY = r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?"
_HOST_FIELDS = re.compile(r"\{([^{}]*)\}")
# characters git refuses in a branch name (git check-ref-format)
_NOT_IN_GIT_REFS = re.compile(r"[\x00-\x20~^:?\[\\\x7f]|\.\.|@\{|//")


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
    acme_email: str | None = None


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
        return _HOST_FIELDS.search(self.host) is None

    def captures(self, branch: str) -> tuple[str, ...] | None:
        """The text each `*` matched, or None when the branch does not match."""
        parts = (re.escape(part) for part in self.match.split("*"))
        found = re.fullmatch("(.*?)".join(parts), branch, flags=re.DOTALL)
        return found.groups() if found else None


@dataclass(frozen=True)
class Gate:
    """When a new colour counts as healthy."""

    consecutive: int = 3
    interval: float = 2.0
    timeout: float = 120.0
    start_grace: float = 10.0


@dataclass(frozen=True)
class Timeouts:
    """How long each wait of a deploy besides the gate may take, each on its own."""

    shared_start: float = 120.0
    edge_start: float = 120.0
    data_jobs: float = 120.0
    migrate: float = 120.0


@dataclass(frozen=True)
class Edge:
    """The branch's nginx, where the blue/green switch happens."""

    image: str = "nginx:1.27.2-bookworm"
    relay_image: str = "haproxy:2.8.11-alpine"
    drain: float = 10.0
    public_subnet: str = "10.231.0.0/24"


@dataclass(frozen=True)
class Lock:
    """The locks a command holds on the Swarm: a lock whose holder has sent no heartbeat
    for `stale_after` belongs to a command that is gone (lock.py)."""

    stale_after: float = 30.0


@dataclass(frozen=True)
class Limits:
    """How large and how slow a request may be: each rendered into every hop that bounds it."""

    body_size: int = 32 * 1024 * 1024
    read_timeout: int = 300
    idle_timeout: int = 180
    data_idle_timeout: int = 3600

    @property
    def proxy_idle_timeout(self) -> int:
        """Traefik drops an idle connection to an edge before nginx closes it, never after:
        a request sent on a connection the other end just closed fails (502)."""
        return self.idle_timeout // 2


@dataclass(frozen=True)
class SwarmSettings:
    """How services are reached: the defaults work without IPVS."""

    endpoint_mode: str = "dnsrr"
    publish_mode: str = "host"
    # node labels (set with `docker node update --label-add LABEL=true`): stateful shared
    # services run only where their volumes are, branch edges where their ports are expected
    data_node_label: str | None = None
    edge_node_label: str | None = None


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
    gate: Gate = Gate()
    timeouts: Timeouts = Timeouts()
    edge: Edge = Edge()
    swarm: SwarmSettings = SwarmSettings()
    lock: Lock = Lock()
    limits: Limits = Limits()
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
            objects=[*self.secrets, *_OBJECT_NAMES],
        )

    def image_repository(self, image: str) -> str:
        return f"{self.registry}/{self.app}-{image}"

    def target_for(self, host: str | None) -> str:
        """Where a command goes: `--host` when given (checked like `target`), else `target`."""
        return _target(Node(host, "--host")) if host else self.target

    def names(self, branch: str) -> naming.BranchNames:
        """The names a branch has on the target: they come from its slug, not from a rule,
        so a branch whose rule is gone still finds what it left there."""
        return naming.BranchNames.derive(self.app, branch, self.slug_budget)

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
        label = _HOST_FIELDS.sub(lambda m: values[m.group(1)], rule.host)
        # a label that is not already a valid DNS label is folded and hashed like a branch
        label = label if naming.is_dns_label(label) else naming.slug(label)
        return f"{label}.{self.domain}"


# Names of the Swarm configs and derived secrets a branch gets besides its own secrets
# (for the length budget).
_OBJECT_NAMES = ("nginx_conf", "maintenance", "relay", "agent", *DERIVED)


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
    merged = merge_layers(layers)
    data = merged.data
    with collecting() as found:
        config = attempt(lambda: _parse(data, root), None)
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


def _parse(data: object, root: Path) -> Config:
    top = Node(data).mapping(
        allowed=(
            "app", "domain", "registry", "target", "images", "services", "shared",
            "branches", "gate", "timeouts", "edge", "swarm", "secrets", "lock", "limits",
        ),
    )  # fmt: skip
    start = recorded()

    def required(key: str, read: Callable[[Node], T], fallback: T) -> T:
        if key not in top:
            report(ConfigError(key, "is required"))
            return fallback
        return attempt(lambda: read(top[key]), fallback)

    secrets: dict[str, SecretSource] = _opt(top, "secrets", _secrets, {})
    secret_names = _keys(top, "secrets")
    images: dict[str, Image] = required("images", lambda n: _entries(n, _image), {})
    shared: dict[str, SharedService] = _opt(top, "shared", lambda n: _shared(n, secret_names), {})
    services: dict[str, Service] = required(
        "services",
        lambda n: _services(n, _keys(top, "images"), _keys(top, "shared"), secret_names),
        {},
    )
    config = Config(
        app=required(
            "app",
            lambda n: n.text(
                _APP,
                "should be lower-case letters and digits, starting with a letter, "
                "at most 20 characters",
            ),
            "",
        ),
        domain=required(
            "domain",
            lambda n: n.text(_DOMAIN, "should be a lower-case DNS domain like example.com"),
            "",
        ),
        registry=required(
            "registry",
            lambda n: n.text(
                _REGISTRY,
                "should be a lower-case registry path like ghcr.io/owner "
                "(GHCR wants the owner in lower case)",
            ),
            "",
        ),
        target=_opt(top, "target", _target, "local"),
        images=MappingProxyType(images),
        services=MappingProxyType(services),
        shared=MappingProxyType(shared),
        branches=required("branches", _branches, ()),
        secrets=MappingProxyType(secrets),
        gate=_opt(top, "gate", _gate, Gate()),
        timeouts=_opt(top, "timeouts", _timeouts, Timeouts()),
        edge=_opt(top, "edge", _edge, Edge()),
        swarm=_opt(top, "swarm", _swarm, SwarmSettings()),
        lock=_opt(top, "lock", _lock, Lock()),
        limits=_opt(top, "limits", _limits, Limits()),
        root=root,
    )
    # what follows judges the config as a whole: only worth it once its parts are right
    settle(start)
    _check_fixed_hosts(config, top["branches"])
    if config.slug_budget < naming.MIN_SLUG_BUDGET:
        top["app"].fail(
            f"'{config.app}' with the longest service, database and secret names leaves "
            f"{config.slug_budget} characters for branch names (at least "
            f"{naming.MIN_SLUG_BUDGET} are needed); shorten the app name or those names"
        )
    # a branch slug of the longest length a branch may get: the worst case of each name
    probe = naming.BranchNames(config.app, "", "x" * config.slug_budget)
    refused: set[str] = set()
    for path, name, grammar in derived_names(config, probe):
        if path not in refused and not grammar.accepts(name):
            refused.add(path)
            shown = name.replace(probe.slug, "<branch>")
            report(
                ConfigError(
                    path,
                    f"makes {shown!r}, which is not valid as {grammar.consumer} "
                    f"({grammar.source}); change it, or what it is built with (app, "
                    "domain, registry)",
                )
            )
    return config


def _check_fixed_hosts(config: Config, rules: Node) -> None:
    """A fixed host is one branch's: no other rule's, and none the shared stack serves."""
    holders = {host: f"the shared {kind}" for kind, host in config.shared_hosts.items()}
    for index, rule in enumerate(config.branches):
        if not rule.fixed_host:
            continue
        host = config.host(rule)
        if host in holders:
            node = rules.child(str(index), None).child("host", rule.host)
            node.fail(f"gives {host}, which {holders[host]} already has; choose another host")
        holders[host] = f"rule '{rule.match}'"


def derived_names(
    config: Config, names: naming.BranchNames
) -> Iterator[tuple[str, str, grammars.Grammar]]:
    """Every name derived from the config for a branch, with the key it comes from and
    the grammar of each consumer that reads it: what `check` holds them to."""
    shared = config.shared_names
    fingerprint = "0" * naming.VERSION_LEN
    for image in config.images:
        # tagged with the release, and with the branch's slug (the Dagger module's publish)
        reference = f"{config.image_repository(image)}:{names.slug}"
        yield "registry", reference, grammars.IMAGE_REFERENCE
    for service in config.services:
        yield f"services/{service}", service, grammars.COMPOSE_KEY
        for colour in naming.COLOURS:
            yield f"services/{service}", names.colour_service(colour, service), grammars.SWARM_NAME
    for kind in config.shared:
        yield f"shared/{kind}", shared.service(kind), grammars.SWARM_NAME
    agent = f"{names.edge_stack}_agent"  # the metrics agent (stacks/edge.yml)
    branch_services = (names.edge_service, names.relay_service, agent, names.network)
    for name in (*branch_services, shared.network, shared.public_network):
        yield "app", name, grammars.SWARM_NAME
    for job in (*(kind.job for kind in KINDS.values()), "migrate"):
        yield "app", names.job(job), grammars.SWARM_NAME
    yield "app", names.live_volume, grammars.VOLUME_NAME
    yield "app", names.relay_host, grammars.HOST_NAME
    for key in config.secrets:
        yield f"secrets/{key}", key, grammars.COMPOSE_KEY
        yield f"secrets/{key}", names.secret(key, fingerprint), grammars.SWARM_OBJECT_NAME
        yield f"secrets/{key}", shared.secret(key, fingerprint), grammars.SWARM_OBJECT_NAME
    for key in _OBJECT_NAMES:
        yield "app", names.secret(key, fingerprint), grammars.SWARM_OBJECT_NAME
    yield "app", names.role, grammars.POSTGRES_IDENTIFIER
    for kind, shared_service in config.shared.items():
        for database in shared_service.databases:
            path = f"shared/{kind}/databases"
            yield path, names.database(database), grammars.POSTGRES_IDENTIFIER
    for index, rule in enumerate(config.branches):
        # what each `*` matched, at its longest: the host label is cut to a DNS label
        longest = ("b" * naming.DNS_LABEL_MAX,) * rule.match.count("*")
        yield f"branches/{index}/host", config.host(rule, names, longest), grammars.HOST_NAME


def _opt(fields: Mapping[str, Node], key: str, read: Callable[[Node], T], default: T) -> T:
    return attempt(lambda: read(fields[key]), default) if key in fields else default


def _keys(fields: Mapping[str, Node], key: str) -> tuple[str, ...]:
    """The names a section defines, good or bad: a reference to an entry that has a
    mistake of its own is not reported again as unknown."""
    value = fields[key].value if key in fields else None
    return tuple(str(name) for name in value) if isinstance(value, dict) else ()


# Words YAML 1.1 reads as true, false or null: as keys in a stack file they are no names
# (yaml.v3 under docker takes true, false and null so; PyYAML all of them).
_YAML_WORDS = ("y", "n", "yes", "no", "on", "off", "true", "false", "null")


def _named(node: Node) -> Iterator[tuple[str, Node]]:
    """The entries of a mapping whose keys name things (services, images, secrets)."""
    for name, entry in node.mapping().items():
        if re.fullmatch(_NAME, name) is None:
            report(ConfigError(entry.path, _NAME_HINT))
        elif name in _YAML_WORDS:
            report(
                ConfigError(
                    entry.path,
                    f"'{name}' is read by YAML as true, false or null, not as a name, where it "
                    "becomes a key of the stack files; choose another name",
                )
            )
        else:
            yield name, entry


def _entries(node: Node, read: Callable[[str, Node], T]) -> dict[str, T]:
    """Each named entry read on its own: a mistake in one leaves the others checked."""
    entries = {name: attempt(partial(read, name, entry), None) for name, entry in _named(node)}
    return {name: value for name, value in entries.items() if value is not None}


def _services(
    node: Node, images: tuple[str, ...], shared: tuple[str, ...], secrets: tuple[str, ...]
) -> dict[str, Service]:
    services = _entries(node, lambda name, entry: _service(name, entry, images, shared, secrets))
    if not node.value:
        node.fail("should define at least one service")
    return services


def _image_reference(node: Node, example: str) -> str:
    reference = node.text()
    if not grammars.IMAGE_REFERENCE.accepts(reference):
        node.fail(f"should be an image reference like {example}, got {describe(reference)}")
    return reference


def _variables(node: Node) -> dict[str, str]:
    """Environment variables (or build args): a name with '=' or a space would be split
    wrong where docker joins NAME=VALUE."""
    values = node.string_map()
    for name in values:
        if re.fullmatch(_ENV_VAR, name) is None:
            node.child(name, None).fail(
                f"should be a variable name (letters, digits and '_', not starting with a "
                f"digit), got {describe(name)}"
            )
    return values


def _url_path(node: Node) -> str:
    path = node.text(_URL_PATH, "should be a URL path like /api/")
    if path == EDGE_HEALTH:
        node.fail(f"{EDGE_HEALTH} is the edge nginx's own health check; use another path")
    return path


def _target(node: Node) -> str:
    if node.value == "local":
        return "local"
    return node.text(_SSH_TARGET, "should be 'local' or ssh://user@host[:port]")


def _image(name: str, node: Node) -> Image:
    fields = node.mapping(
        allowed=("context", "dockerfile", "platform", "build_args"), required=("context",)
    )
    return Image(
        name=name,
        context=fields["context"].text(),
        dockerfile=_opt(fields, "dockerfile", Node.text, "Dockerfile"),
        platform=_opt(
            fields, "platform",
            lambda n: n.text(_PLATFORM, "should be a platform like linux/amd64"),
            DEFAULT_PLATFORM,
        ),
        build_args=MappingProxyType(_opt(fields, "build_args", _variables, {})),
    )  # fmt: skip


def _service(
    name: str,
    node: Node,
    images: tuple[str, ...],
    shared: tuple[str, ...],
    secrets: tuple[str, ...],
) -> Service:
    fields = node.mapping(
        allowed=(
            "image",
            "port",
            "path",
            "health",
            "replicas",
            "singleton",
            "uses",
            "secrets",
            "env",
            "command",
            "migrate",
            "max_per_node",
            "metrics",
        ),
        required=("image",),
    )
    data_services = [kind for kind in shared if kind in DATA_SERVICES]
    start = recorded()
    service = Service(
        name=name,
        image=attempt(lambda: fields["image"].reference(images, "image"), ""),
        port=_opt(fields, "port", lambda n: n.integer(1, 65535), None),
        path=_opt(fields, "path", _url_path, None),
        health=_opt(fields, "health", _url_path, None),
        replicas=_opt(fields, "replicas", lambda n: n.integer(0, 100), 1),
        singleton=_opt(fields, "singleton", Node.boolean, False),
        uses=_opt(fields, "uses", lambda n: n.references(data_services, "data service"), ()),
        secrets=_opt(fields, "secrets", lambda n: n.references(secrets, "secret"), ()),
        env=MappingProxyType(_opt(fields, "env", _variables, {})),
        command=_opt(fields, "command", _argv, ()),
        migrate=_opt(fields, "migrate", _argv, ()),
        max_per_node=_opt(fields, "max_per_node", lambda n: n.integer(1, 100), None),
        metrics=_opt(fields, "metrics", lambda n: _metrics(n, shared), None),
    )
    settle(start)
    if service.singleton and service.replicas > 1:
        fields["replicas"].fail(f"a singleton runs exactly one task, got {service.replicas}")
    if service.singleton and service.path is not None:
        fields["path"].fail("a singleton is not routed (it never runs in both colours)")
    if service.path is not None and service.port is None:
        node.child("port", None).fail(f"is required because path {service.path} routes to it")
    if service.path is not None and service.health is None:
        node.child("health", None).fail(
            f"is required because path {service.path} routes to it (the gate checks it)"
        )
    if service.health is not None and service.path is None:
        fields["health"].fail("is checked through nginx, so the service needs a path too")
    return service


def _argv(node: Node) -> tuple[str, ...]:
    argv = tuple(item.text() for item in node.items())
    if not argv:
        node.fail("should be a command as a list, e.g. [python3, manage.py, migrate]")
    return argv


def _shared(node: Node, secrets: tuple[str, ...]) -> dict[str, SharedService]:
    result: dict[str, SharedService] = {}
    for kind, entry in node.mapping(allowed=SHARED_KINDS).items():
        service = attempt(partial(_shared_service, kind, entry, secrets), None)
        if service is not None:
            result[kind] = service
    if "promtail" in result and "loki" not in result:
        node.child("promtail", None).fail("ships logs to Loki, so shared/loki is needed too")
    return result


def _shared_service(kind: str, entry: Node, secrets: tuple[str, ...]) -> SharedService:
    needs_password = kind in WITH_ADMIN_PASSWORD
    fields = entry.mapping(
        allowed=[
            "image",
            *(["databases"] if kind in WITH_DATABASES else []),
            *(["admin_password"] if needs_password else []),
            *(["acme_email"] if kind == "traefik" else []),
        ],
        required=["image", *(["acme_email"] if kind == "traefik" else [])],
    )
    if needs_password and "admin_password" not in fields:
        report(
            ConfigError(
                entry.child("admin_password", None).path,
                "is required: the name of a secret (under secrets:) holding the admin "
                "password; each branch's password is derived from it",
            )
        )
    return SharedService(
        kind=kind,
        image=attempt(lambda: _image_reference(fields["image"], "postgres:16"), ""),
        databases=_opt(
            fields,
            "databases",
            lambda n: n.names(_NAME, _NAME_HINT),
            ("main",) if kind in WITH_DATABASES else (),
        ),
        admin_password=_opt(
            fields, "admin_password", lambda n: n.reference(secrets, "secret"), None
        ),
        acme_email=_opt(
            fields,
            "acme_email",
            lambda n: n.text(r"[^@\s]+@[^@\s]+\.[^@\s]+", "should be an e-mail address"),
            None,
        ),
    )


def _branches(node: Node) -> tuple[BranchRule, ...]:
    rules: list[BranchRule] = []
    for item in node.items():
        rule = attempt(partial(_branch_rule, item, rules), None)
        if rule is not None:
            rules.append(rule)
    if not node.value:
        node.fail("should list at least one rule, e.g. '- match: develop'")
    if sum(rule.production for rule in rules) > 1:
        node.fail("only one rule can be production: true")
    return tuple(rules)


def _branch_rule(item: Node, earlier_rules: list[BranchRule]) -> BranchRule:
    fields = item.mapping(
        allowed=("match", "host", "production", "protected", "port", "shared"),
        required=("match",),
    )
    match = fields["match"].text()
    literal = match.replace("*", "x")
    if _NOT_IN_GIT_REFS.search(literal) or literal.endswith((".lock", "/", ".")):
        fields["match"].fail(f"'{match}' can never match a git branch name")
    for earlier in earlier_rules:
        if earlier.match in ("*", match):
            fields["match"].fail(
                f"'{match}' can never match: rule '{earlier.match}' comes first and "
                "takes every branch this one would; move this rule above it"
            )
    host = _opt(fields, "host", Node.text, "{slug}")
    allowed = ["slug", *(str(i + 1) for i in range(match.count("*")))]
    for placeholder in _HOST_FIELDS.findall(host):
        if placeholder not in allowed:
            fields["host"].fail(
                f"unknown placeholder {{{placeholder}}} in {host!r}; "
                f"use {', '.join('{' + a + '}' for a in allowed)} or '@' for the domain"
            )
    production = _opt(fields, "production", Node.boolean, False)
    protected = _opt(fields, "protected", Node.boolean, production)
    port = _opt(fields, "port", lambda n: n.integer(1, 65535), None)
    shared = _opt(fields, "shared", Node.boolean, production)
    rule = BranchRule(match, host, production, protected, port, shared)
    for key, one_branch_only in (("port", port is not None), ("host", rule.fixed_host)):
        if one_branch_only and "*" in match and key in fields:
            what = "published port" if key == "port" else "host without {slug} or {1}"
            fields[key].fail(
                f"a {what} serves one branch, but '{match}' matches many; "
                "give each such branch a rule of its own"
            )
    return rule


def _gate(node: Node) -> Gate:
    fields = node.mapping(allowed=("consecutive", "interval", "timeout", "start_grace"))
    start = recorded()
    default = Gate()
    gate = Gate(
        consecutive=_opt(fields, "consecutive", lambda n: n.integer(1, 100), default.consecutive),
        interval=_opt(fields, "interval", _positive_duration, default.interval),
        timeout=_opt(fields, "timeout", Node.duration, default.timeout),
        start_grace=_opt(fields, "start_grace", Node.duration, default.start_grace),
    )
    settle(start)
    if gate.consecutive > 1 and gate.timeout <= _last_but_one_check(gate):
        seen = _last_but_one_check(gate)
        node.child("timeout", None).fail(
            f"{gate.timeout:g}s is too short for the gate ever to pass: after "
            f"{gate.start_grace:g}s of start_grace, {gate.consecutive} checks every "
            f"{gate.interval:g}s put check {gate.consecutive - 1} at {seen:g}s at the "
            f"earliest, and the gate gives up after any check from {gate.timeout:g}s on, "
            f"before check {gate.consecutive}; raise it above {seen:g}s, or lower "
            "gate/start_grace, gate/interval or gate/consecutive"
        )
    return gate


def _last_but_one_check(gate: Gate) -> float:
    """When, at the earliest, the check before the gate's last needed one comes."""
    # Deployer._health_gate sets its deadline, waits for the tasks (at best no time), sleeps
    # start_grace, then checks every interval; after a check that did not pass it gives up
    # once the deadline is reached, so the last needed check comes only if the one before
    # it came before the deadline.
    return gate.start_grace + (gate.consecutive - 2) * gate.interval


def _timeouts(node: Node) -> Timeouts:
    keys = ("shared_start", "edge_start", "data_jobs", "migrate")
    fields = node.mapping(allowed=keys)
    default = Timeouts()
    values = {key: _opt(fields, key, _positive_duration, getattr(default, key)) for key in keys}
    return Timeouts(**values)


def _positive_duration(node: Node) -> float:
    seconds = node.duration()
    if seconds <= 0:
        node.fail("should be longer than 0s")
    return seconds


def _edge(node: Node) -> Edge:
    fields = node.mapping(allowed=("image", "relay_image", "drain", "public_subnet"))
    default = Edge()
    return Edge(
        relay_image=_opt(
            fields,
            "relay_image",
            lambda n: _image_reference(n, "haproxy:2.8"),
            default.relay_image,
        ),
        image=_opt(
            fields,
            "image",
            lambda n: _image_reference(n, "nginx:1.27"),
            default.image,
        ),
        drain=_opt(fields, "drain", Node.duration, default.drain),
        public_subnet=_opt(
            fields,
            "public_subnet",
            lambda n: n.text(_SUBNET, "should be a subnet like 10.231.0.0/24"),
            default.public_subnet,
        ),
    )


def _lock(node: Node) -> Lock:
    fields = node.mapping(allowed=("stale_after",))
    return Lock(stale_after=_opt(fields, "stale_after", _stale_after, Lock().stale_after))


def _stale_after(node: Node) -> float:
    seconds = node.duration()
    if seconds < 10:
        node.fail(
            f"should be at least 10s (six heartbeats fit in it, one every stale_after/6), "
            f"got {node.value}"
        )
    return seconds


def _label_key(node: Node) -> str:
    return node.text(_LABEL_KEY, "should be a node label key like swarm-deploy.data")


def _swarm(node: Node) -> SwarmSettings:
    fields = node.mapping(
        allowed=("endpoint_mode", "publish_mode", "data_node_label", "edge_node_label")
    )
    default = SwarmSettings()
    return SwarmSettings(
        data_node_label=_opt(fields, "data_node_label", _label_key, None),
        edge_node_label=_opt(fields, "edge_node_label", _label_key, None),
        endpoint_mode=_opt(
            fields,
            "endpoint_mode",
            lambda n: n.text("dnsrr|vip", "should be dnsrr or vip"),
            default.endpoint_mode,
        ),
        publish_mode=_opt(
            fields,
            "publish_mode",
            lambda n: n.text("host|ingress", "should be host or ingress"),
            default.publish_mode,
        ),
    )


def _secrets(node: Node) -> dict[str, SecretSource]:
    return _entries(node, _secret)


def _secret(name: str, entry: Node) -> SecretSource:
    if isinstance(entry.value, dict) and "value" in entry.value:
        entry.child("value", None).fail(
            "inline secret values are not allowed (they would end up in git); "
            "use env: VARIABLE or file: PATH"
        )
    fields = entry.mapping(allowed=("env", "file"))
    if len(fields) != 1:
        entry.fail("should have exactly one of env: VARIABLE or file: PATH")
    return SecretSource(
        name=name,
        env=_opt(fields, "env", lambda n: n.text(_ENV_VAR, "should be a variable name"), None),
        file=_opt(fields, "file", Node.text, None),
    )


# --- Limits along a request's path: docs/request-path.md draws the chain ---

_SIZE = re.compile(r"([0-9]+)([kKmMgG]?)")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _size(node: Node) -> int:
    """Bytes, from a number or text like 512k, 32m, 1g (nginx's units)."""
    value = node.value
    found = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif found is not None:
        size = int(found[1]) * _SIZE_UNITS[found[2].lower()]
    else:
        node.fail(f"should be a size like 512k, 32m or 1g, got {describe(value)}")
    if size < 1:
        node.fail(f"should be at least 1 byte, got {describe(value)}")
    return size


def _seconds(node: Node, low: int = 1) -> int:
    """A duration of whole seconds: every hop (Traefik, nginx, HAProxy) reads it alike."""
    seconds = node.duration()
    if seconds != int(seconds) or seconds < low:
        node.fail(
            f"should be a whole number of seconds, at least {low}s, got {describe(node.value)}"
        )
    return int(seconds)


def _limits(node: Node) -> Limits:
    fields = node.mapping(
        allowed=("body_size", "read_timeout", "idle_timeout", "data_idle_timeout")
    )
    default = Limits()
    limits = Limits(
        body_size=_opt(fields, "body_size", _size, default.body_size),
        read_timeout=_opt(fields, "read_timeout", _seconds, default.read_timeout),
        # Traefik's pool to the edges gets half of it, and needs a whole second
        idle_timeout=_opt(fields, "idle_timeout", lambda n: _seconds(n, 2), default.idle_timeout),
        data_idle_timeout=_opt(fields, "data_idle_timeout", _seconds, default.data_idle_timeout),
    )
    if limits.data_idle_timeout < limits.read_timeout:
        node.child("data_idle_timeout", None).fail(
            f"{limits.data_idle_timeout}s is shorter than limits/read_timeout "
            f"({limits.read_timeout}s): the relay would cut a query the request still waits "
            "for; raise it or lower limits/read_timeout"
        )
    return limits


# --- Metrics: each branch's agent scrapes what its services declare ---


def _metrics(node: Node, shared: tuple[str, ...]) -> Metrics:
    fields = node.mapping(allowed=("port", "path"), required=("port",))
    if "prometheus" not in shared:
        node.fail(
            "are scraped by the branch's agent for the shared Prometheus, so shared/prometheus "
            "is needed too"
        )
    return Metrics(
        port=fields["port"].integer(1, 65535),
        path=_opt(
            fields,
            "path",
            lambda n: n.text(_URL_PATH, "should be a URL path like /metrics"),
            "/metrics",
        ),
    )
