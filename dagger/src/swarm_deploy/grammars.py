"""What each consumer of a derived name accepts, transcribed from the consumer's source.

A name swarm-deploy derives (an image reference, a Swarm service, network, secret or
config name, a volume, a host name an app puts into a URL) is read by more than one
program; it must be valid for every one of them. `check` holds each derived name
against these grammars before anything changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Grammar:
    """A consumer's rule for names: a pattern (matched whole) and a length limit, of the
    whole name or, when the pattern has a group `name`, of that part."""

    consumer: str
    pattern: str
    max_length: int
    source: str

    def accepts(self, name: str) -> bool:
        found = re.fullmatch(self.pattern, name)
        if found is None:
            return False
        limited = found.group("name") if "name" in found.groupdict() else name
        return len(limited.encode()) <= self.max_length


# distribution/reference (the library docker, containerd and registries parse image
# references with), regexp.go and reference.go: a repository name is an optional domain
# then path components of lower-case letters and digits joined by one '.', one or two
# '_' or any number of '-'; at most 255 characters (RepositoryNameTotalLengthMax).
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN_AND_PORT = rf"{_HOST}(?::[0-9]+)?"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_NAME = rf"(?P<name>(?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME})"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = Grammar(
    "an image reference (docker, containerd and registries)",
    rf"{_NAME}(?::{_TAG})?(?:@{_DIGEST})?",
    255,
    "github.com/distribution/reference regexp.go (referencePat), reference.go "
    "(RepositoryNameTotalLengthMax)",
)

# moby/swarmkit manager/controlapi/common.go: validateAnnotations, for services and
# networks (isValidDNSName, "name must be 63 characters or fewer")
SWARM_NAME = Grammar(
    "a Swarm service or network name",
    r"[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*",
    63,
    "github.com/moby/swarmkit manager/controlapi/common.go (validateAnnotations)",
)
# the same file, validateConfigOrSecretAnnotations (isValidConfigOrSecretName)
SWARM_OBJECT_NAME = Grammar(
    "a Swarm secret or config name",
    r"[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?",
    64,
    "github.com/moby/swarmkit manager/controlapi/common.go (validateConfigOrSecretAnnotations)",
)
# moby daemon/names/names.go (RestrictedNamePattern), which the local volume driver
# (volume/local/local.go, validateName) holds names to; one character is "too short"
VOLUME_NAME = Grammar(
    "a volume name (the local driver)",
    r"[a-zA-Z0-9][a-zA-Z0-9_.-]+",
    255,
    "github.com/moby/moby daemon/names/names.go, volume/local/local.go (validateName)",
)
# docker/cli cli/compose/schema/data/config_schema_v3.9.json: the keys of services,
# networks, volumes, secrets and configs in a stack file
COMPOSE_KEY = Grammar(
    "a key in a stack file (docker stack deploy)",
    r"[a-zA-Z0-9._-]+",
    255,
    "github.com/docker/cli cli/compose/schema/data/config_schema_v3.9.json",
)
# RFC 1035 2.3.1 (<label>: letters, digits, hyphens inside) relaxed by RFC 1123 2.1 (a
# label may start with a digit); 63 octets a label and 255 a name (RFC 1035 2.3.4),
# 253 characters written without the final dot. Client libraries parse URLs with it
# (java.net.URI takes `a_b` as no host at all), so hosts apps put into URLs keep to it.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = Grammar(
    "a host name (RFC 1123), as URLs of client libraries need it",
    rf"{_LABEL}(?:\.{_LABEL})*",
    253,
    "RFC 1035 section 2.3.1 and 2.3.4, RFC 1123 section 2.1",
)
# PostgreSQL, "SQL Syntax: Identifiers and Key Words": at most NAMEDATALEN-1 = 63 bytes;
# a longer one is truncated, so two names could become one. The scripts quote them (%I),
# so only the length (in bytes) counts.
POSTGRES_IDENTIFIER = Grammar(
    "a PostgreSQL identifier",
    r"[^\x00]+",
    63,
    "postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS",
)
