"""The certificates a deploy makes Traefik order, and the warning near the CA's weekly limit:
the rule on facts made here, and the plan's exact words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from swarm_deploy import certificates, pipeline, usecases
from swarm_deploy.certificates import Certificates
from swarm_deploy.claims import RunningShared
from swarm_deploy.config import Config
from swarm_deploy.config_tls import Acme, AcmeDns
from swarm_deploy.plan import Facts, plan_lines
from tests.render_helpers import RELEASE, SENTINELS

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TRAEFIK = MappingProxyType({"traefik": RunningShared("abc", "traefik:v3.6.12")})


def with_acme(cfg: Config, acme: Acme) -> Config:
    shared = {**cfg.shared, "traefik": replace(cfg.shared["traefik"], acme=acme)}
    return replace(cfg, shared=MappingProxyType(shared))


WILDCARD = Acme(challenge="dns", dns=AcmeDns(provider="exec"))


def edges(count: int, age: timedelta = timedelta(days=1)) -> dict[str, datetime]:
    return {f"gaia-b{i}-edge_nginx": NOW - age for i in range(count)}


def facts(*, traefik: bool = True, created: dict[str, datetime] | None = None) -> Facts:
    return Facts(
        read=True,
        shared_stack=TRAEFIK if traefik else MappingProxyType({}),
        edges_created=MappingProxyType(created or {}),
    )


def test_a_new_branch_orders_a_certificate_for_its_host(project: pipeline.Project) -> None:
    cfg = project.config
    found = certificates.certificates(cfg, cfg.branch("develop"), facts(created=edges(3)), NOW)
    assert found == Certificates("develop.gaia.example.com", ("develop.gaia.example.com",),
                                 wildcard=False, read=True, recent=3, limit=50)  # fmt: skip


def test_a_branch_whose_edge_exists_orders_none(project: pipeline.Project) -> None:
    cfg = project.config
    created = {"gaia-develop-edge_nginx": NOW - timedelta(days=2)}
    found = certificates.certificates(cfg, cfg.branch("develop"), facts(created=created), NOW)
    assert found is not None
    assert (found.new, found.recent, found.this_week) == ((), 1, 1)


def test_the_deploy_that_starts_traefik_orders_grafanas_host_too(
    project: pipeline.Project,
) -> None:
    cfg = project.config
    found = certificates.certificates(cfg, cfg.branch("develop"), facts(traefik=False), NOW)
    assert found is not None
    assert found.new == ("develop.gaia.example.com", "grafana.gaia.example.com")


def test_with_dns_01_only_the_deploy_that_starts_traefik_orders_the_wildcard(
    project: pipeline.Project,
) -> None:
    cfg = with_acme(project.config, WILDCARD)
    branch = cfg.branch("feature/x")
    first = certificates.certificates(cfg, branch, facts(traefik=False), NOW)
    later = certificates.certificates(cfg, branch, facts(created=edges(45)), NOW)
    assert first is not None
    assert later is not None
    assert (first.new, later.new) == (("*.gaia.example.com",), ())
    # a wildcard is no host's: the week's branches cannot exhaust it
    assert certificates.warning(later) is None


def test_the_week_counts_edges_created_in_the_last_7_days_only(
    project: pipeline.Project,
) -> None:
    cfg = project.config
    created = {
        **edges(2, timedelta(days=6, hours=23, minutes=59)),
        "gaia-old-edge_nginx": NOW - timedelta(days=7),
        "gaia-older-edge_nginx": NOW - timedelta(days=30),
    }
    found = certificates.certificates(cfg, cfg.branch("develop"), facts(created=created), NOW)
    assert found is not None
    assert found.recent == 2


def test_without_traefik_no_certificate_is_ordered(project: pipeline.Project) -> None:
    cfg = project.config
    shared = {kind: s for kind, s in cfg.shared.items() if kind != "traefik"}
    cfg = replace(cfg, shared=MappingProxyType(shared))
    assert certificates.certificates(cfg, cfg.branch("develop"), facts(), NOW) is None


@pytest.mark.parametrize(("recent", "warned"), [(38, False), (39, True), (60, True)])
def test_the_warning_comes_at_80_percent_of_the_weekly_limit(
    project: pipeline.Project, recent: int, warned: bool
) -> None:
    cfg = project.config
    found = certificates.certificates(cfg, cfg.branch("develop"), facts(created=edges(recent)), NOW)
    assert found is not None
    assert (certificates.warning(found) is not None) is warned


def test_the_limit_is_the_configs(project: pipeline.Project) -> None:
    cfg = with_acme(project.config, Acme(weekly_limit=10))
    found = certificates.certificates(cfg, cfg.branch("develop"), facts(created=edges(7)), NOW)
    assert found is not None
    assert certificates.warning(found) == (
        "certificates: 7 edge stack(s) of this app were created on the target in the last 7 "
        "days and this deploy orders 1 more: 8 of the 10 new certificates the CA issues per "
        "registered domain a week (shared/traefik/acme/weekly_limit); past it a new branch's "
        "host gets no certificate until the week rolls on. One wildcard certificate serves "
        "every branch: set shared/traefik/acme/challenge: dns with a DNS provider "
        "(docs/config.md)"
    )


# --- the plan's words


def plan_of(
    project: pipeline.Project, branch: str, held: Facts, deployed_at: str = ""
) -> pipeline.Plan:
    return usecases.plan(
        usecases.PlanRequest(
            project, branch, RELEASE, environ=SENTINELS, facts=held,
            deployed_at=deployed_at, update_shared=True,
        )
    )  # fmt: skip


def certs_line(the_plan: pipeline.Plan) -> str:
    return next(text for _, text in plan_lines(the_plan) if text.startswith("  certs "))


def test_an_offline_plan_counts_a_first_deploy(project: pipeline.Project) -> None:
    the_plan = plan_of(project, "develop", Facts())
    assert certs_line(the_plan) == (
        "  certs    2 new: develop.gaia.example.com, grafana.gaia.example.com (a certificate "
        "per host, by HTTP-01); target not read: counted as a first deploy"
    )
    assert the_plan.to_json()["certificates"] == {
        "new": ["develop.gaia.example.com", "grafana.gaia.example.com"],
        "wildcard": False,
        "this_week": None,
        "weekly_limit": 50,
    }


def test_a_plan_near_the_limit_says_the_count_and_warns(project: pipeline.Project) -> None:
    the_plan = plan_of(project, "develop", facts(created=edges(40)), "2026-11-30T12:00:00Z")
    assert certs_line(the_plan) == (
        "  certs    1 new: develop.gaia.example.com (a certificate per host, by HTTP-01); "
        "41 of 50 this week"
    )
    assert the_plan.warnings == (
        "certificates: 40 edge stack(s) of this app were created on the target in the last 7 "
        "days and this deploy orders 1 more: 41 of the 50 new certificates the CA issues per "
        "registered domain a week (shared/traefik/acme/weekly_limit); past it a new branch's "
        "host gets no certificate until the week rolls on. One wildcard certificate serves "
        "every branch: set shared/traefik/acme/challenge: dns with a DNS provider "
        "(docs/config.md)",
    )


def test_a_plan_of_a_branch_already_served_orders_none(project: pipeline.Project) -> None:
    created = {"gaia-develop-edge_nginx": NOW - timedelta(days=1)}
    the_plan = plan_of(project, "develop", facts(created=created), "2026-11-30T12:00:00Z")
    assert certs_line(the_plan) == (
        "  certs    none new: develop.gaia.example.com has its certificate already; "
        "1 of 50 this week"
    )
    assert the_plan.warnings == ()


def test_a_wildcard_plan_orders_none_for_a_branch(project: pipeline.Project) -> None:
    cfg = with_acme(project.config, WILDCARD)
    wildcard = pipeline.Project(cfg, project.templates)
    the_plan = plan_of(wildcard, "feature/x", facts(created=edges(45)), "2026-11-30T12:00:00Z")
    assert certs_line(the_plan) == (
        "  certs    none new: the wildcard certificate covers feature-x-217d2b.gaia.example.com"
    )
    first = plan_of(wildcard, "feature/x", facts(traefik=False))
    assert certs_line(first) == (
        "  certs    1 new: *.gaia.example.com (one wildcard certificate for every branch, "
        "by DNS-01)"
    )
    assert the_plan.warnings == first.warnings == ()
