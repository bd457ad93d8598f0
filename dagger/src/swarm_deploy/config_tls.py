"""shared/traefik's own keys: the ports Traefik publishes, and how it gets certificates
(ACME: which CA, which challenge, the DNS provider's settings). Traefik v3.6's options:
`certificatesresolvers.<name>.acme.{caserver,dnschallenge.*}`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from swarm_deploy import config_keys as keys
from swarm_deploy._reader import Node, describe, recorded, settle
from swarm_deploy.config_values import ENV_VAR, HTTPS_URL, LEGO_PROVIDER, RESOLVER, opt, variables

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
# Let's Encrypt's "New Certificates per Registered Domain": 50 per 7 days, a renewal (the
# same set of names again) exempt (https://letsencrypt.org/docs/rate-limits/)
WEEKLY_LIMIT = 50
CHALLENGES = ("http", "dns")
# Traefik's keyType values (pkg/provider/acme/provider.go). EC256 first: an RSA-4096 key
# (Traefik's default) signs 249 TLS handshakes a second on one core of this project's
# machines, a P-256 key 51,410 (`openssl speed rsa4096 ecdsap256`); under 100 new HTTPS
# connections a second the RSA key kept a 2-core VM's Traefik too busy to answer in 5 s.
KEY_TYPES = ("EC256", "EC384", "RSA2048", "RSA4096", "RSA8192")
# where Traefik's secrets are mounted: lego reads <NAME>_FILE for every credential
SECRETS_DIR = "/run/secrets"
# HTTPS's own port, which a URL leaves out
HTTPS_PORT = 443


@dataclass(frozen=True)
class TraefikPorts:
    """The ports of the node Traefik publishes: HTTP (the HTTP-01 challenge and the
    redirect to HTTPS) and HTTPS."""

    http: int = 80
    https: int = HTTPS_PORT

    @property
    def redirect_to(self) -> str:
        """Where HTTP redirects: the entrypoint (whose own port, 443, a URL leaves out), or
        the published port when it is another: Traefik writes that port into the URL."""
        return "websecure" if self.https == HTTPS_PORT else f":{self.https}"

    def url(self, host: str) -> str:
        """Where users reach `host` through Traefik: the port in the URL unless it is 443."""
        return f"https://{host}" + ("" if self.https == HTTPS_PORT else f":{self.https}")


@dataclass(frozen=True)
class AcmeDns:
    """The DNS-01 challenge: a lego DNS provider, its settings and propagation checks."""

    provider: str
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # variable -> key of the top-level secrets: table
    secrets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    resolvers: tuple[str, ...] = ()
    delay: float | None = None
    disable_checks: bool = False
    disable_ans_checks: bool = False
    require_all_rns: bool = False

    @property
    def environment(self) -> dict[str, str]:
        """Traefik's environment: the plain values, and `<NAME>_FILE` for each secret (lego
        reads the file; the value never reaches the service's definition)."""
        files = {f"{name}_FILE": f"{SECRETS_DIR}/{key}" for name, key in self.secrets.items()}
        return {**self.env, **files}


@dataclass(frozen=True)
class Acme:
    """How Traefik's resolver gets certificates: from which CA, by which challenge."""

    ca_server: str = LETS_ENCRYPT
    # a key of the secrets: table: the PEM root of a private CA's HTTPS (Pebble, step-ca)
    ca_certificate: str | None = None
    challenge: str = "http"
    dns: AcmeDns | None = None
    weekly_limit: int = WEEKLY_LIMIT
    key_type: str = KEY_TYPES[0]

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The secrets Traefik mounts, each once, at /run/secrets/<key>."""
        keys = [self.ca_certificate] if self.ca_certificate is not None else []
        keys += self.dns.secrets.values() if self.dns is not None else ()
        return tuple(dict.fromkeys(keys))

    @property
    def ca_certificate_file(self) -> str | None:
        """Where Traefik reads the private CA's root."""
        return None if self.ca_certificate is None else f"{SECRETS_DIR}/{self.ca_certificate}"

    @property
    def wildcard(self) -> bool:
        """One certificate for the domain and `*.<domain>`, for every branch host (a
        single label under the domain): only DNS-01 may prove a wildcard."""
        return self.challenge == "dns"


def read_ports(node: Node) -> TraefikPorts:
    fields = node.mapping(allowed=keys.TRAEFIK_PORTS.allowed)
    default = TraefikPorts()
    ports = TraefikPorts(
        http=opt(fields, "http", lambda n: n.integer(1, 65535), default.http),
        https=opt(fields, "https", lambda n: n.integer(1, 65535), default.https),
    )
    if ports.http == ports.https:
        node.child("https", None).fail(
            f"{ports.https} is shared/traefik/ports/http too: HTTP and HTTPS need a port each"
        )
    return ports


def read_acme(node: Node, secrets: tuple[str, ...]) -> Acme:
    fields = node.mapping(allowed=keys.ACME.allowed)
    start = recorded()
    default = Acme()
    acme = Acme(
        ca_server=opt(
            fields,
            "ca_server",
            lambda n: n.text(
                HTTPS_URL,
                "should be the https:// URL of an ACME directory, like "
                f"{LETS_ENCRYPT} (Let's Encrypt's, the default)",
            ),
            default.ca_server,
        ),
        ca_certificate=opt(
            fields, "ca_certificate", lambda n: n.reference(secrets, "secret"), None
        ),
        challenge=opt(fields, "challenge", _challenge, default.challenge),
        dns=opt(fields, "dns", lambda n: _dns(n, secrets), None),
        weekly_limit=opt(fields, "weekly_limit", lambda n: n.integer(1), default.weekly_limit),
        key_type=opt(fields, "key_type", _key_type, default.key_type),
    )
    settle(start)
    if acme.challenge == "dns" and acme.dns is None:
        node.child("dns", None).fail(
            "is required with challenge: dns: the DNS provider Traefik writes the challenge "
            "record with, e.g. {provider: cloudflare, secrets: {CF_DNS_API_TOKEN: cf_token}}"
        )
    if acme.challenge != "dns" and acme.dns is not None:
        fields["dns"].fail(
            f"is used only with challenge: dns, and challenge is {acme.challenge}; add "
            "challenge: dns for one wildcard certificate, or remove dns"
        )
    return acme


def _challenge(node: Node) -> str:
    return node.text("|".join(CHALLENGES), "should be http (HTTP-01, a certificate per host) "
                     "or dns (DNS-01, one wildcard certificate)")  # fmt: skip


def _key_type(node: Node) -> str:
    return node.text("|".join(KEY_TYPES), "should be one of " + ", ".join(KEY_TYPES) +
                     " (EC256: the fastest TLS handshakes, every current client)")  # fmt: skip


def _dns(node: Node, secrets: tuple[str, ...]) -> AcmeDns:
    fields = node.mapping(allowed=keys.ACME_DNS.allowed, required=keys.ACME_DNS.required)
    start = recorded()
    dns = AcmeDns(
        provider=fields["provider"].text(
            LEGO_PROVIDER,
            "should be a DNS provider's code as lego (Traefik's ACME client) names it, "
            "like cloudflare, route53 or exec",
        ),
        env=MappingProxyType(opt(fields, "env", variables, {})),
        secrets=MappingProxyType(opt(fields, "secrets", lambda n: _secrets(n, secrets), {})),
        resolvers=opt(fields, "resolvers", _resolvers, ()),
        delay=opt(fields, "delay", Node.duration, None),
        disable_checks=opt(fields, "disable_checks", Node.boolean, False),
        disable_ans_checks=opt(fields, "disable_ans_checks", Node.boolean, False),
        require_all_rns=opt(fields, "require_all_rns", Node.boolean, False),
    )
    settle(start)
    if dns.provider == "manual":
        fields["provider"].fail(
            "'manual' waits for someone to create the record by hand, which nobody does in "
            "a deploy; use your DNS host's provider code"
        )
    for name in dns.env:
        for secret_name in dns.secrets:
            if name in (secret_name, f"{secret_name}_FILE"):
                fields["env"].child(name, None).fail(
                    f"is what secrets: {secret_name} (the secret {dns.secrets[secret_name]}) "
                    "sets already; remove it here"
                )
    return dns


def _secrets(node: Node, known: tuple[str, ...]) -> dict[str, str]:
    """Variable -> a key of the top-level secrets: table."""
    result: dict[str, str] = {}
    for name, entry in node.mapping().items():
        if not isinstance(name, str) or re.fullmatch(ENV_VAR, name) is None:
            entry.fail(f"should be a variable name (letters, digits and '_'), got {describe(name)}")
        if name.endswith("_FILE"):
            entry.fail(
                f"names the variable itself: Traefik gets {name}_FILE pointing at the "
                f"secret's file; write {name.removesuffix('_FILE')}"
            )
        result[name] = entry.reference(known, "secret")
    return result


def _resolvers(node: Node) -> tuple[str, ...]:
    resolvers = tuple(item.text(RESOLVER, "should be host:port, like 1.1.1.1:53")
                      for item in node.items())  # fmt: skip
    for item, resolver in zip(node.items(), resolvers, strict=True):
        port = int(resolver.rpartition(":")[2])
        if not 1 <= port <= 65535:
            item.fail(f"should have a port from 1 to 65535, got {describe(resolver)}")
    if not resolvers:
        node.fail("should list at least one resolver, like 1.1.1.1:53, or be left out")
    return resolvers
