"""The sections of swarm-deploy.yml that name things: images, services, shared services,
branch rules, secrets."""

from __future__ import annotations

from functools import partial
from types import MappingProxyType

from swarm_deploy import config_keys as keys
from swarm_deploy._reader import Node, attempt, recorded, report, settle
from swarm_deploy.config import (
    DATA_SERVICES,
    DEFAULT_PLATFORM,
    SHARED_KINDS,
    WITH_ADMIN_PASSWORD,
    WITH_DATABASES,
    BranchRule,
    Image,
    Metrics,
    Service,
    SharedService,
)
from swarm_deploy.config_tls import Acme, TraefikPorts, read_acme, read_ports
from swarm_deploy.config_values import (
    EMAIL,
    ENV_VAR,
    HOST_FIELDS,
    NAME,
    NAME_HINT,
    NOT_IN_GIT_REFS,
    PLATFORM,
    URL_PATH,
    argv,
    entries,
    image_reference,
    opt,
    url_path,
    variables,
)
from swarm_deploy.errors import ConfigError
from swarm_deploy.secrets import SecretSource


def read_services(
    node: Node, images: tuple[str, ...], shared: tuple[str, ...], secrets: tuple[str, ...]
) -> dict[str, Service]:
    services = entries(node, lambda name, entry: _service(name, entry, images, shared, secrets))
    if not node.value:
        node.fail("should define at least one service")
    return services


def read_image(name: str, node: Node) -> Image:
    fields = node.mapping(allowed=keys.IMAGE.allowed, required=keys.IMAGE.required)
    return Image(
        name=name,
        context=fields["context"].text(),
        dockerfile=opt(fields, "dockerfile", Node.text, "Dockerfile"),
        platform=opt(
            fields, "platform",
            lambda n: n.text(PLATFORM, "should be a platform like linux/amd64"),
            DEFAULT_PLATFORM,
        ),
        build_args=MappingProxyType(opt(fields, "build_args", variables, {})),
    )  # fmt: skip


def _service(
    name: str,
    node: Node,
    images: tuple[str, ...],
    shared: tuple[str, ...],
    secrets: tuple[str, ...],
) -> Service:
    fields = node.mapping(
        allowed=keys.SERVICE.allowed,
        required=keys.SERVICE.required,
    )
    data_services = [kind for kind in shared if kind in DATA_SERVICES]
    start = recorded()
    service = Service(
        name=name,
        image=attempt(lambda: fields["image"].reference(images, "image"), ""),
        port=opt(fields, "port", lambda n: n.integer(1, 65535), None),
        path=opt(fields, "path", url_path, None),
        health=opt(fields, "health", url_path, None),
        replicas=opt(fields, "replicas", lambda n: n.integer(0, 100), 1),
        singleton=opt(fields, "singleton", Node.boolean, False),
        uses=opt(fields, "uses", lambda n: n.references(data_services, "data service"), ()),
        secrets=opt(fields, "secrets", lambda n: n.references(secrets, "secret"), ()),
        env=MappingProxyType(opt(fields, "env", variables, {})),
        command=opt(fields, "command", argv, ()),
        migrate=opt(fields, "migrate", argv, ()),
        max_per_node=opt(fields, "max_per_node", lambda n: n.integer(1, 100), None),
        metrics=opt(fields, "metrics", lambda n: _metrics(n, shared), None),
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


def shared_section(kind: str) -> keys.Section:
    """The keys a kind of shared service accepts."""
    return keys.shared_service(
        databases=kind in WITH_DATABASES,
        admin_password=kind in WITH_ADMIN_PASSWORD,
        traefik=kind == "traefik",
    )


def read_shared(node: Node, secrets: tuple[str, ...]) -> dict[str, SharedService]:
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
    section = shared_section(kind)
    fields = entry.mapping(
        allowed=section.allowed,
        # a missing admin_password has a message of its own, below
        required=tuple(key for key in section.required if key != "admin_password"),
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
        image=attempt(lambda: image_reference(fields["image"], "postgres:16"), ""),
        databases=opt(
            fields,
            "databases",
            lambda n: n.names(NAME, NAME_HINT),
            ("main",) if kind in WITH_DATABASES else (),
        ),
        admin_password=opt(
            fields, "admin_password", lambda n: n.reference(secrets, "secret"), None
        ),
        acme_email=opt(
            fields,
            "acme_email",
            lambda n: n.text(EMAIL, "should be an e-mail address"),
            None,
        ),
        ports=opt(fields, "ports", read_ports, TraefikPorts()) if kind == "traefik" else None,
        acme=opt(fields, "acme", lambda n: read_acme(n, secrets), Acme())
        if kind == "traefik"
        else None,
    )


def read_branches(node: Node) -> tuple[BranchRule, ...]:
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
        allowed=keys.BRANCH_RULE.allowed,
        required=keys.BRANCH_RULE.required,
    )
    match = fields["match"].text()
    literal = match.replace("*", "x")
    if NOT_IN_GIT_REFS.search(literal) or literal.endswith((".lock", "/", ".")):
        fields["match"].fail(f"'{match}' can never match a git branch name")
    for earlier in earlier_rules:
        if earlier.match in ("*", match):
            fields["match"].fail(
                f"'{match}' can never match: rule '{earlier.match}' comes first and "
                "takes every branch this one would; move this rule above it"
            )
    host = opt(fields, "host", Node.text, "{slug}")
    allowed = ["slug", *(str(i + 1) for i in range(match.count("*")))]
    for placeholder in HOST_FIELDS.findall(host):
        if placeholder not in allowed:
            fields["host"].fail(
                f"unknown placeholder {{{placeholder}}} in {host!r}; "
                f"use {', '.join('{' + a + '}' for a in allowed)} or '@' for the domain"
            )
    production = opt(fields, "production", Node.boolean, False)
    protected = opt(fields, "protected", Node.boolean, production)
    port = opt(fields, "port", lambda n: n.integer(1, 65535), None)
    shared = opt(fields, "shared", Node.boolean, production)
    rule = BranchRule(match, host, production, protected, port, shared)
    for key, one_branch_only in (("port", port is not None), ("host", rule.fixed_host)):
        if one_branch_only and "*" in match and key in fields:
            what = "published port" if key == "port" else "host without {slug} or {1}"
            fields[key].fail(
                f"a {what} serves one branch, but '{match}' matches many; "
                "give each such branch a rule of its own"
            )
    return rule


def read_secrets(node: Node) -> dict[str, SecretSource]:
    return entries(node, _secret)


def _secret(name: str, entry: Node) -> SecretSource:
    if isinstance(entry.value, dict) and "value" in entry.value:
        entry.child("value", None).fail(
            "inline secret values are not allowed (they would end up in git); "
            "use env: VARIABLE or file: PATH"
        )
    fields = entry.mapping(allowed=keys.SECRET.allowed)
    if len(fields) != 1:
        entry.fail("should have exactly one of env: VARIABLE or file: PATH")
    return SecretSource(
        name=name,
        env=opt(fields, "env", lambda n: n.text(ENV_VAR, "should be a variable name"), None),
        file=opt(fields, "file", Node.text, None),
    )


# --- Metrics: each branch's agent scrapes what its services declare ---


def _metrics(node: Node, shared: tuple[str, ...]) -> Metrics:
    fields = node.mapping(allowed=keys.METRICS.allowed, required=keys.METRICS.required)
    if "prometheus" not in shared:
        node.fail(
            "are scraped by the branch's agent for the shared Prometheus, so shared/prometheus "
            "is needed too"
        )
    return Metrics(
        port=fields["port"].integer(1, 65535),
        path=opt(
            fields,
            "path",
            lambda n: n.text(URL_PATH, "should be a URL path like /metrics"),
            "/metrics",
        ),
    )
