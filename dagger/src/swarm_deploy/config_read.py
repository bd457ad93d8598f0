"""swarm-deploy.yml as a whole: its sections read in order, then the checks across them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from swarm_deploy import config_keys as keys
from swarm_deploy import grammars, naming
from swarm_deploy._reader import Node, attempt, recorded, report, settle
from swarm_deploy.config import OBJECT_NAMES, Config, Image, Service, SharedService
from swarm_deploy.config_sections import (
    read_branches,
    read_image,
    read_secrets,
    read_services,
    read_shared,
)
from swarm_deploy.config_settings import (
    Edge,
    Gate,
    Limits,
    Lock,
    SwarmSettings,
    Timeouts,
    read_edge,
    read_gate,
    read_limits,
    read_lock,
    read_swarm,
    read_timeouts,
)
from swarm_deploy.config_values import APP, DOMAIN, REGISTRY, entries, keys_of, opt, read_target
from swarm_deploy.datakinds import KINDS
from swarm_deploy.errors import ConfigError
from swarm_deploy.secrets import SecretSource

T = TypeVar("T")


def read_config(data: object, root: Path) -> Config:
    top = Node(data).mapping(allowed=keys.TOP.allowed)
    start = recorded()

    def required(key: str, read: Callable[[Node], T], fallback: T) -> T:
        if key not in top:
            report(ConfigError(key, "is required"))
            return fallback
        return attempt(lambda: read(top[key]), fallback)

    secrets: dict[str, SecretSource] = opt(top, "secrets", read_secrets, {})
    secret_names = keys_of(top, "secrets")
    images: dict[str, Image] = required("images", lambda n: entries(n, read_image), {})
    shared: dict[str, SharedService] = opt(
        top, "shared", lambda n: read_shared(n, secret_names), {}
    )
    services: dict[str, Service] = required(
        "services",
        lambda n: read_services(n, keys_of(top, "images"), keys_of(top, "shared"), secret_names),
        {},
    )
    config = Config(
        app=required(
            "app",
            lambda n: n.text(
                APP,
                "should be lower-case letters and digits, starting with a letter, "
                "at most 20 characters",
            ),
            "",
        ),
        domain=required(
            "domain",
            lambda n: n.text(DOMAIN, "should be a lower-case DNS domain like example.com"),
            "",
        ),
        registry=required(
            "registry",
            lambda n: n.text(
                REGISTRY,
                "should be a lower-case registry path like ghcr.io/owner "
                "(GHCR wants the owner in lower case)",
            ),
            "",
        ),
        target=opt(top, "target", read_target, "local"),
        images=MappingProxyType(images),
        services=MappingProxyType(services),
        shared=MappingProxyType(shared),
        branches=required("branches", read_branches, ()),
        secrets=MappingProxyType(secrets),
        gate=opt(top, "gate", read_gate, Gate()),
        timeouts=opt(top, "timeouts", read_timeouts, Timeouts()),
        edge=opt(top, "edge", read_edge, Edge()),
        swarm=opt(top, "swarm", read_swarm, SwarmSettings()),
        lock=opt(top, "lock", read_lock, Lock()),
        limits=opt(top, "limits", read_limits, Limits()),
        root=root,
    )
    # what follows judges the config as a whole: only worth it once its parts are right
    settle(start)
    _check_fixed_hosts(config, top["branches"])
    _check_edge_replicas(config, top)
    _check_traefik_ports(config, top)
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


def _check_edge_replicas(config: Config, top: dict[str, Node]) -> None:
    """Several nginx tasks cannot share a host-mode port: one node holds it for one task,
    and a client of that node's address reaches no other."""
    replicas = config.edge.replicas
    ported = [rule for rule in config.branches if config.host_port(rule)]
    if replicas is None or replicas == 1 or not ported:
        return
    node = top["edge"].child("replicas", replicas)
    node.fail(
        f"{replicas} nginx tasks per branch cannot share the port {ported[0].port} of rule "
        f"'{ported[0].match}': with swarm/publish_mode: host a node publishes it for one "
        "task only, and a client of that node reaches no other; set swarm/publish_mode: "
        "ingress (every node publishes it and balances over the tasks), or edge/replicas: 1"
    )


def _check_traefik_ports(config: Config, top: dict[str, Node]) -> None:
    """A port of a node is published by one service: Traefik's are no branch rule's."""
    traefik = config.shared.get("traefik")
    if traefik is None or traefik.ports is None:
        return
    node = top["shared"].child("traefik", None).child("ports", None)
    for name, port in (("http", traefik.ports.http), ("https", traefik.ports.https)):
        for index, rule in enumerate(config.branches):
            if rule.port == port:
                node.child(name, port).fail(
                    f"{port} is also the port of branch rule '{rule.match}' "
                    f"(branches/{index}/port): a port of a node is published by one service; "
                    "choose another for one of them (Traefik's are 80 and 443 unless "
                    "shared/traefik/ports says otherwise)"
                )


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
    for key in OBJECT_NAMES:
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
