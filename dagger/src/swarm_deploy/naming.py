"""Branch names -> every name swarm-deploy creates: pure and deterministic.

A branch keeps its name verbatim when it already is a lower-case DNS label
(`develop`, `feature-1`). Any other name is folded to one (`feature/JIRA-123_add-login`
-> `feature-jira-123-add-login`) and gets `-<6 hex>` of the raw name appended, so
branches that fold alike (`feature/a_b`, `feature/a-b`, `Feature/A-B`) stay apart.
A verbatim slug never ends in `-<6 hex>`, so it cannot equal another branch's
folded slug either.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from swarm_deploy.errors import BranchNameError

COLOURS = ("blue", "green")
# in a branch's nginx, on its live volume: live/blue or live/green names the live colour
# (commands.LIVE_SCRIPT writes it, nginx.conf reads it on every request)
LIVE_DIR = "/etc/nginx/live"
# the one-shot job that removes the old colour after a deploy returned (actions.HandOffDrain)
DRAIN_JOB = "drain"
# the prefix of every label swarm-deploy puts on what it creates
LABEL = "swarm-deploy"
# the label `docker stack deploy` puts on each service, config and container of a stack
STACK_NAMESPACE = "com.docker.stack.namespace"
HASH_LEN = 6
VERSION_LEN = 10
RESERVED_SLUGS = frozenset({"shared", "public"})
DNS_LABEL_MAX = 63
SECRET_NAME_MAX = 64
MIN_SLUG_BUDGET = 16

_DNS_LABEL = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_HASH_TAIL = re.compile(rf"-[0-9a-f]{{{HASH_LEN}}}$")


def label(key: str) -> str:
    """`swarm-deploy.<key>`: a label of what swarm-deploy creates."""
    return f"{LABEL}.{key}"


def owner_labels(app: str, scope: str) -> dict[str, str]:
    """Whose a secret, config or job is: the app's, and a branch's (its slug) or `shared`."""
    return {label("app"): app, label("slug"): scope}


def short_hash(text: str, length: int = HASH_LEN) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def fold(text: str) -> str:
    """Lower-case ASCII letters and digits joined by single hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def is_dns_label(text: str) -> bool:
    return len(text) <= DNS_LABEL_MAX and _DNS_LABEL.fullmatch(text) is not None


def slug(name: str, max_len: int = DNS_LABEL_MAX, reserved: Iterable[str] = ()) -> str:
    """A DNS label of at most `max_len` characters that only `name` maps to."""
    if not any(ch.isalnum() for ch in name):
        if not name:
            problem = "the branch name is empty"
        elif not name.strip():
            problem = f"the branch name {name!r} is only whitespace"
        else:
            problem = f"branch {name!r} has no letters or digits, so no name can be derived from it"
        raise BranchNameError(f"{problem}; pass the git branch name, e.g. --branch develop")
    folded = fold(name)
    verbatim = (
        folded == name
        and len(name) <= max_len
        and not _HASH_TAIL.search(name)
        and name not in reserved
    )
    if verbatim:
        return name
    tail = f"-{short_hash(name)}"
    head = folded[: max_len - len(tail)].rstrip("-") or "b"
    return head + tail


def lock(app: str, scope: str) -> str:
    """The Swarm config that is the lock of a scope: a branch's slug, or `shared`."""
    return f"{app}_{scope}_lock"


def versioned(prefix: str, fingerprint: str) -> str:
    """`<prefix>_<10 hex>`: Swarm secrets and configs are immutable, so content names them."""
    return f"{prefix}_{fingerprint[:VERSION_LEN]}"


def slug_budget(
    app: str, services: Iterable[str], databases: Iterable[str], objects: Iterable[str]
) -> int:
    """The longest branch slug for which every derived name stays within its limit."""

    def longest(names: Iterable[str]) -> int:
        return max((len(name) for name in names), default=0)

    return min(
        DNS_LABEL_MAX,
        # `<app>-<slug>-green_<service>` is a task's DNS name
        DNS_LABEL_MAX - len(f"{app}--green_") - longest(services),
        # PostgreSQL identifiers `<app>_<slug>_<database>`
        DNS_LABEL_MAX - len(f"{app}__") - longest(databases),
        # Swarm secret and config names `<app>_<slug>_<name>_<10 hex>`
        SECRET_NAME_MAX - len(f"{app}___") - VERSION_LEN - longest(objects),
    )


@dataclass(frozen=True)
class SharedNames:
    """Names of what one VM shares between branches."""

    app: str

    @property
    def stack(self) -> str:
        return f"{self.app}-shared"

    @property
    def network(self) -> str:
        return f"{self.app}-shared"

    @property
    def public_network(self) -> str:
        return f"{self.app}-public"

    def service(self, name: str) -> str:
        return f"{self.stack}_{name}"

    def secret(self, name: str, fingerprint: str) -> str:
        return versioned(f"{self.app}_shared_{name}", fingerprint)


@dataclass(frozen=True)
class BranchNames:
    """Names of one branch's stacks, network, databases, secrets and host."""

    app: str
    branch: str
    slug: str

    @classmethod
    def derive(cls, app: str, branch: str, max_len: int = DNS_LABEL_MAX) -> BranchNames:
        return cls(app, branch, slug(branch, max_len, RESERVED_SLUGS))

    @property
    def ident(self) -> str:
        """The slug as a PostgreSQL identifier part (hyphens are not allowed there)."""
        return self.slug.replace("-", "_")

    @property
    def edge_stack(self) -> str:
        return f"{self.app}-{self.slug}-edge"

    def colour_stack(self, colour: str) -> str:
        return f"{self.app}-{self.slug}-{colour}"

    def colour_service(self, colour: str, service: str) -> str:
        return f"{self.colour_stack(colour)}_{service}"

    @property
    def edge_service(self) -> str:
        return f"{self.edge_stack}_nginx"

    @property
    def relay_service(self) -> str:
        """The branch's door to the shared data services (in the edge stack)."""
        return f"{self.edge_stack}_data"

    @property
    def relay_host(self) -> str:
        """The relay's name on the branch network, for the services' PGHOST, MONGO_HOST and
        REDIS_URL: a host name (RFC 1123, no '_'), which URL parsers of client libraries
        require; the service name has a '_'."""
        return f"{self.app}-{self.slug}-data"

    @property
    def live_volume(self) -> str:
        """The edge's volume holding the live colour."""
        return f"{self.edge_stack}-live"

    def job(self, kind: str) -> str:
        """A one-shot Swarm job of the branch: `db`, `redis`, `migrate`, `nginx-t`, `drain`."""
        return f"{self.app}-{self.slug}-{kind}"

    @property
    def owner_labels(self) -> dict[str, str]:
        """The labels of the branch's secrets and one-shot jobs."""
        return owner_labels(self.app, self.slug)

    @property
    def labels(self) -> dict[str, str]:
        """Labels every service and container of the branch carries (Promtail, status)."""
        return {label("app"): self.app, label("branch"): self.branch, label("slug"): self.slug}

    @property
    def network(self) -> str:
        return f"{self.app}-{self.slug}"

    @property
    def role(self) -> str:
        return f"{self.app}_{self.ident}"

    def database(self, name: str) -> str:
        return f"{self.app}_{self.ident}_{name}"

    @property
    def redis_prefix(self) -> str:
        return f"{self.app}:{self.slug}:"

    def secret(self, name: str, fingerprint: str) -> str:
        return versioned(f"{self.app}_{self.slug}_{name}", fingerprint)
