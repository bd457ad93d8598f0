"""How many new certificates a deploy makes Traefik order, and whether a week of them comes
near the CA's limit. Pure: the config, the facts and the time in; a count and words out.

Let's Encrypt issues at most 50 new certificates per registered domain per 7 days, a
renewal (the same names again) exempt (https://letsencrypt.org/docs/rate-limits/, "New
Certificates per Registered Domain"; shared/traefik/acme/weekly_limit). Traefik orders a
certificate when a router that names its resolver appears: with HTTP-01 one for each
host, the first time the host's edge (or Grafana's router) comes up; with DNS-01 one for
`<domain>` and `*.<domain>`, which every router asks for, when Traefik first runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from swarm_deploy.config import Branch, Config
from swarm_deploy.plan_facts import Facts

WEEK = timedelta(days=7)
# plan warns when a week's new certificates reach this share of the limit
WARN_NUMERATOR, WARN_DENOMINATOR = 4, 5


@dataclass(frozen=True)
class Certificates:
    """The certificates a deploy of `host` orders (each by its first name), and the app's
    edge stacks created on the target in the week before (None: not read)."""

    host: str
    new: tuple[str, ...]
    wildcard: bool
    read: bool
    recent: int | None
    limit: int

    @property
    def this_week(self) -> int | None:
        """The week's new certificates with this deploy's, as far as the Swarm tells."""
        return None if self.recent is None else self.recent + len(self.new)


def certificates(
    config: Config, branch: Branch, facts: Facts, now: datetime | None
) -> Certificates | None:
    """What the deploy orders (None without Traefik); not read, it is a first deploy."""
    traefik = config.shared.get("traefik")
    if traefik is None or traefik.acme is None:
        return None
    acme = traefik.acme
    traefik_runs = facts.read and "traefik" in facts.shared_stack
    new: tuple[str, ...]
    if acme.wildcard:
        new = () if traefik_runs else (f"*.{config.domain}",)
    else:
        edge_exists = facts.read and branch.names.edge_service in facts.edges_created
        ordered = [(branch.host, edge_exists)]
        ordered += [(host, traefik_runs) for host in config.shared_hosts.values()]
        new = tuple(host for host, exists in ordered if not exists)
    recent = None
    if facts.read and now is not None:
        recent = sum(1 for created in facts.edges_created.values() if now - created < WEEK)
    return Certificates(branch.host, new, acme.wildcard, facts.read, recent, acme.weekly_limit)


def describe(found: Certificates) -> str:
    """The plan's line: how many, for which names, and the week so far."""
    if found.new:
        how = (
            "one wildcard certificate for every branch, by DNS-01"
            if found.wildcard
            else "a certificate per host, by HTTP-01"
        )
        text = f"{len(found.new)} new: {', '.join(found.new)} ({how})"
    elif found.wildcard:
        text = f"none new: the wildcard certificate covers {found.host}"
    else:
        text = f"none new: {found.host} has its certificate already"
    if not found.read:
        text += "; target not read: counted as a first deploy"
    elif found.this_week is not None and not found.wildcard:
        text += f"; {found.this_week} of {found.limit} this week"
    return text


def warning(found: Certificates) -> str | None:
    """A warning when a week of per-host certificates reaches 80% of the CA's limit."""
    this_week = found.this_week
    if found.wildcard or found.recent is None or this_week is None:
        return None
    if this_week * WARN_DENOMINATOR < found.limit * WARN_NUMERATOR:
        return None
    return (
        f"certificates: {found.recent} edge stack(s) of this app were created on the target "
        f"in the last 7 days and this deploy orders {len(found.new)} more: {this_week} of "
        f"the {found.limit} new certificates the CA issues per registered domain a week "
        "(shared/traefik/acme/weekly_limit); past it a new branch's host gets no certificate "
        "until the week rolls on. One wildcard certificate serves every branch: set "
        "shared/traefik/acme/challenge: dns with a DNS provider (docs/config.md)"
    )
