"""Every key swarm-deploy.yml accepts, in one table: the readers take each section's allowed
and required keys from it, and the JSON Schema (config_schema.py) and the test that holds
docs/config.md to the code are made from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarm_deploy.config_values import (
    APP,
    DOMAIN,
    EMAIL,
    ENV_VAR,
    HTTPS_URL,
    LABEL_KEY,
    LEGO_PROVIDER,
    NAME,
    PLATFORM,
    REGISTRY,
    RESOLVER,
    SSH_TARGET,
    SUBNET,
    URL_PATH,
)

Json = dict[str, Any]


def _pattern(regex: str) -> str:
    """A whole-value pattern as JSON Schema reads it (a search, not a full match)."""
    return f"^(?:{regex})$"


def text(regex: str | None = None) -> Json:
    schema: Json = {"type": "string", "minLength": 1}
    return schema if regex is None else {**schema, "pattern": _pattern(regex)}


def integer(low: int, high: int | None = None) -> Json:
    return {"type": "integer", "minimum": low, **({} if high is None else {"maximum": high})}


BOOLEAN: Json = {"type": "boolean"}
# _reader.Node.duration: a number of seconds, or 500ms, 30s, 2m, 1m30s, 1h
DURATION: Json = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$"},
    ]
}
# config_settings.size: bytes, or 512k, 32m, 1g
SIZE: Json = {
    "anyOf": [
        {"type": "integer", "minimum": 1},
        {"type": "string", "pattern": r"^[0-9]+[kKmMgG]?$"},
    ]
}
NAMES: Json = {"type": "array", "items": text(NAME), "minItems": 1, "uniqueItems": True}
REFERENCES: Json = {"type": "array", "items": text()}
ARGV: Json = {"type": "array", "items": text(), "minItems": 1}
VARIABLES: Json = {
    "type": "object",
    "propertyNames": {"pattern": _pattern(ENV_VAR)},
    "additionalProperties": {"type": ["string", "number"]},
}
PORT = integer(1, 65535)


@dataclass(frozen=True)
class Key:
    """A key of a section, and the JSON Schema of its value."""

    name: str
    value: Json
    required: bool = False


@dataclass(frozen=True)
class Section:
    """A mapping of the config: the keys it accepts."""

    keys: tuple[Key, ...]

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys if key.required)

    def schema(self) -> Json:
        schema: Json = {
            "type": "object",
            "properties": {key.name: key.value for key in self.keys},
            "additionalProperties": False,
        }
        return {**schema, "required": list(self.required)} if self.required else schema


def named(section: Section) -> Json:
    """A mapping of names (images, services, secrets) to entries of `section`."""
    return {
        "type": "object",
        "propertyNames": {"pattern": _pattern(NAME)},
        "additionalProperties": section.schema(),
    }


IMAGE = Section(
    (
        Key("context", text(), required=True),
        Key("dockerfile", text()),
        Key("platform", text(PLATFORM)),
        Key("build_args", VARIABLES),
    )
)
METRICS = Section((Key("port", PORT, required=True), Key("path", text(URL_PATH))))
SERVICE = Section(
    (
        Key("image", text(), required=True),
        Key("port", PORT),
        Key("path", text(URL_PATH)),
        Key("health", text(URL_PATH)),
        Key("replicas", integer(0, 100)),
        Key("singleton", BOOLEAN),
        Key("uses", REFERENCES),
        Key("secrets", REFERENCES),
        Key("env", VARIABLES),
        Key("command", ARGV),
        Key("migrate", ARGV),
        Key("max_per_node", integer(1, 100)),
        Key("metrics", METRICS.schema()),
    )
)


TRAEFIK_PORTS = Section((Key("http", PORT), Key("https", PORT)))
ACME_DNS = Section(
    (
        Key("provider", text(LEGO_PROVIDER), required=True),
        Key("env", VARIABLES),
        Key(
            "secrets",
            {
                "type": "object",
                "propertyNames": {"pattern": _pattern(ENV_VAR)},
                "additionalProperties": text(),
            },
        ),
        Key("resolvers", {"type": "array", "items": text(RESOLVER), "minItems": 1}),
        Key("delay", DURATION),
        Key("disable_checks", BOOLEAN),
        Key("disable_ans_checks", BOOLEAN),
        Key("require_all_rns", BOOLEAN),
    )
)
ACME = Section(
    (
        Key("ca_server", text(HTTPS_URL)),
        Key("ca_certificate", text()),
        Key("challenge", {"enum": ["http", "dns"]}),
        Key("dns", ACME_DNS.schema()),
        Key("weekly_limit", integer(1)),
        Key("key_type", {"enum": ["EC256", "EC384", "RSA2048", "RSA4096", "RSA8192"]}),
    )
)


def shared_service(databases: bool, admin_password: bool, traefik: bool) -> Section:
    """The keys of one kind of shared service."""
    keys = [Key("image", text(), required=True)]
    keys += [Key("databases", NAMES)] if databases else []
    keys += [Key("admin_password", text(), required=True)] if admin_password else []
    if traefik:
        keys += [
            Key("acme_email", text(EMAIL), required=True),
            Key("ports", TRAEFIK_PORTS.schema()),
            Key("acme", ACME.schema()),
        ]
    return Section(tuple(keys))


BRANCH_RULE = Section(
    (
        Key("match", text(), required=True),
        Key("host", text()),
        Key("production", BOOLEAN),
        Key("protected", BOOLEAN),
        Key("port", PORT),
        Key("shared", BOOLEAN),
    )
)
GATE = Section(
    (
        Key("consecutive", integer(1, 100)),
        Key("interval", DURATION),
        Key("timeout", DURATION),
        Key("start_grace", DURATION),
    )
)
TIMEOUTS = Section(
    tuple(Key(name, DURATION) for name in ("shared_start", "edge_start", "data_jobs", "migrate"))
)
EDGE = Section(
    (
        Key("image", text()),
        Key("relay_image", text()),
        Key("drain", DURATION),
        Key("public_subnet", text(SUBNET)),
        Key("replicas", integer(1, 10)),
        Key("health_interval", DURATION),
        Key("health_timeout", DURATION),
        Key("retry_attempts", integer(1, 10)),
        Key("dial_timeout", DURATION),
    )
)
SWARM = Section(
    (
        Key("endpoint_mode", {"enum": ["dnsrr", "vip"]}),
        Key("publish_mode", {"enum": ["host", "ingress"]}),
        Key("data_node_label", text(LABEL_KEY)),
        Key("edge_node_label", text(LABEL_KEY)),
        Key("docker_socket", text(r"/\S+")),
    )
)
LOCK = Section((Key("stale_after", DURATION),))
LIMITS = Section(
    (
        Key("body_size", SIZE),
        Key("read_timeout", DURATION),
        Key("idle_timeout", DURATION),
        Key("data_idle_timeout", DURATION),
    )
)
SECRET = Section((Key("env", text(ENV_VAR)), Key("file", text())))
# `shared`'s value depends on the kinds (config.SHARED_KINDS): config_schema fills it in
TOP = Section(
    (
        Key("app", text(APP), required=True),
        Key("domain", text(DOMAIN), required=True),
        Key("registry", text(REGISTRY), required=True),
        Key("target", {"anyOf": [{"const": "local"}, text(SSH_TARGET)]}),
        Key("images", named(IMAGE), required=True),
        Key("services", named(SERVICE), required=True),
        Key("shared", {"type": "object"}),
        Key("branches", {"type": "array", "items": BRANCH_RULE.schema(), "minItems": 1}, True),
        Key("gate", GATE.schema()),
        Key("timeouts", TIMEOUTS.schema()),
        Key("edge", EDGE.schema()),
        Key("swarm", SWARM.schema()),
        Key("secrets", named(SECRET)),
        Key("lock", LOCK.schema()),
        Key("limits", LIMITS.schema()),
    )
)
