"""Values of swarm-deploy.yml as the readers of each section take them: the grammar of
each kind of value, and readers shared by the sections."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import TypeVar

from swarm_deploy import grammars
from swarm_deploy._reader import Node, attempt, describe, report
from swarm_deploy.errors import ConfigError

T = TypeVar("T")

# Names become parts of image references, Swarm service, secret and config names and
# stack file keys: letters and digits joined by single '_' suit every one (grammars.py);
# `bot_` or `a___b` would make an image reference no registry takes.
NAME = r"(?=.{1,30}$)[a-z][a-z0-9]*(?:_[a-z0-9]+)*"
NAME_HINT = (
    "should be a name of lower-case letters and digits, starting with a letter, with "
    "single '_' between words, at most 30 characters (it becomes part of image, service "
    "and secret names)"
)
APP = r"[a-z][a-z0-9]{0,19}"
ENV_VAR = r"[A-Za-z_][A-Za-z0-9_]*"
DOMAIN = r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
REGISTRY = r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*"
SSH_TARGET = r"ssh://([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:[0-9]{1,5})?"
PLATFORM = r"linux/(amd64|arm64|arm/v7)"
URL_PATH = r"/[A-Za-z0-9._~/-]*"
EDGE_HEALTH = "/healthz"
SUBNET = r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}"
LABEL_KEY = r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?"
EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
HTTPS_URL = r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*)?"
# a DNS provider's code as lego names it (cloudflare, route53, acme-dns, exec)
LEGO_PROVIDER = r"[a-z0-9]+([.-][a-z0-9]+)*"
# a DNS server: host:port, or [IPv6]:port
RESOLVER = r"([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}"
HOST_FIELDS = re.compile(r"\{([^{}]*)\}")
# characters git refuses in a branch name (git check-ref-format)
NOT_IN_GIT_REFS = re.compile(r"[\x00-\x20~^:?\[\\\x7f]|\.\.|@\{|//")


def opt(fields: Mapping[str, Node], key: str, read: Callable[[Node], T], default: T) -> T:
    return attempt(lambda: read(fields[key]), default) if key in fields else default


def keys_of(fields: Mapping[str, Node], key: str) -> tuple[str, ...]:
    """The names a section defines, good or bad: a reference to an entry that has a
    mistake of its own is not reported again as unknown."""
    value = fields[key].value if key in fields else None
    return tuple(str(name) for name in value) if isinstance(value, dict) else ()


# Words YAML 1.1 reads as true, false or null: as keys in a stack file they are no names
# (yaml.v3 under docker takes true, false and null so; PyYAML all of them).
YAML_WORDS = ("y", "n", "yes", "no", "on", "off", "true", "false", "null")


def named(node: Node) -> Iterator[tuple[str, Node]]:
    """The entries of a mapping whose keys name things (services, images, secrets)."""
    for name, entry in node.mapping().items():
        if re.fullmatch(NAME, name) is None:
            report(ConfigError(entry.path, NAME_HINT))
        elif name in YAML_WORDS:
            report(
                ConfigError(
                    entry.path,
                    f"'{name}' is read by YAML as true, false or null, not as a name, where it "
                    "becomes a key of the stack files; choose another name",
                )
            )
        else:
            yield name, entry


def entries(node: Node, read: Callable[[str, Node], T]) -> dict[str, T]:
    """Each named entry read on its own: a mistake in one leaves the others checked."""
    entries = {name: attempt(partial(read, name, entry), None) for name, entry in named(node)}
    return {name: value for name, value in entries.items() if value is not None}


def image_reference(node: Node, example: str) -> str:
    reference = node.text()
    if not grammars.IMAGE_REFERENCE.accepts(reference):
        node.fail(f"should be an image reference like {example}, got {describe(reference)}")
    return reference


def variables(node: Node) -> dict[str, str]:
    """Environment variables (or build args): a name with '=' or a space would be split
    wrong where docker joins NAME=VALUE."""
    values = node.string_map()
    for name in values:
        if re.fullmatch(ENV_VAR, name) is None:
            node.child(name, None).fail(
                f"should be a variable name (letters, digits and '_', not starting with a "
                f"digit), got {describe(name)}"
            )
    return values


def url_path(node: Node) -> str:
    path = node.text(URL_PATH, "should be a URL path like /api/")
    if path == EDGE_HEALTH:
        node.fail(f"{EDGE_HEALTH} is the edge nginx's own health check; use another path")
    return path


def read_target(node: Node) -> str:
    if node.value == "local":
        return "local"
    return node.text(SSH_TARGET, "should be 'local' or ssh://user@host[:port]")


def argv(node: Node) -> tuple[str, ...]:
    argv = tuple(item.text() for item in node.items())
    if not argv:
        node.fail("should be a command as a list, e.g. [python3, manage.py, migrate]")
    return argv


def positive_duration(node: Node) -> float:
    seconds = node.duration()
    if seconds <= 0:
        node.fail("should be longer than 0s")
    return seconds


def label_key(node: Node) -> str:
    return node.text(LABEL_KEY, "should be a node label key like swarm-deploy.data")
