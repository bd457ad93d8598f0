"""`plan --read-target` on the in-memory Swarm (tests/unit/swarm_sim.py): the facts and the
manager's clock a deploy reads, read without a lock, so the plan counts the week's new
certificates and warns near the CA's limit; and `deploy` shows that line and warning
before it runs."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from swarm_deploy import cli, profiles, usecases_plan
from swarm_deploy.engine import Swarm
from swarm_deploy.naming import label
from tests.conftest import ROOT
from tests.unit.swarm_sim import START, Service, Sim, use_sim

CERTS = (
    "  certs    1 new: develop.gaia.localhost (a certificate per host, by HTTP-01); "
    "5 of 5 this week"
)
WARNING = (
    "warning: certificates: 4 edge stack(s) of this app were created on the target in the "
    "last 7 days and this deploy orders 1 more: 5 of the 5 new certificates the CA issues "
    "per registered domain a week (shared/traefik/acme/weekly_limit); past it a new "
    "branch's host gets no certificate until the week rolls on. One wildcard certificate "
    "serves every branch: set shared/traefik/acme/challenge: dns with a DNS provider "
    "(docs/config.md)"
)
OFFLINE_CERTS = (
    "  certs    1 new: develop.gaia.localhost (a certificate per host, by HTTP-01); "
    "target not read: counted as a first deploy"
)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The local profile with Traefik ordering certificates by HTTP-01, 5 a week."""
    shutil.copytree(ROOT / "examples/gaia/dev-secrets", tmp_path / "examples/gaia/dev-secrets")
    merged = profiles.merged_data(ROOT / "swarm-deploy.local.yml")
    merged["shared"]["traefik"] = {
        "image": "127.0.0.1:5000/testbed/traefik:v3",
        "acme_email": "ops@gaia.localhost",
        "acme": {"weekly_limit": 5},
    }
    (tmp_path / "swarm-deploy.yml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return tmp_path / "swarm-deploy.yml"


def edge_of(sim: Sim, branch: str, age: timedelta) -> None:
    """Another branch's nginx, created `age` before the manager's now."""
    name = f"gaia-{branch}-edge_nginx"
    labels = {label("app"): "gaia", label("service"): "nginx", label("branch"): branch,
              "com.docker.stack.namespace": f"gaia-{branch}-edge"}  # fmt: skip
    sim.services[name] = Service(name, "nginx", labels, {}, 1, id=name, created=sim.now - age)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Sim:
    """Four branches' edges created in the last 7 days, one 8 days ago."""
    the_sim = Sim(now=START + timedelta(days=30))
    for number in range(4):
        edge_of(the_sim, f"b{number}", timedelta(days=6, hours=23))
    edge_of(the_sim, "old", timedelta(days=8))
    use_sim(monkeypatch, the_sim)
    return the_sim


def invoke(config_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli.main, [*args, "--config", str(config_path)])


def test_plan_read_target_counts_the_weeks_certificates_and_warns(
    config_path: Path, sim: Sim
) -> None:
    before = {name: service.to_json() for name, service in sim.services.items()}
    result = invoke(config_path, "plan", "-b", "develop", "--release", "r1", "--read-target")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert CERTS in lines
    assert "  colour   blue goes live" in lines
    assert result.stderr.splitlines() == [WARNING]
    # read only: no lock taken, nothing created, changed or removed
    assert {name: service.to_json() for name, service in sim.services.items()} == before
    assert (sim.secrets, sim.configs) == ({}, {})
    assert sim.log == []


def test_plan_read_target_as_json_carries_the_count_and_the_warning(
    config_path: Path, sim: Sim
) -> None:
    args = ("plan", "-b", "develop", "--release", "r1", "--read-target", "--json")
    result = invoke(config_path, *args)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert (found["facts_read"], found["certificates"]) == (
        True,
        {"new": ["develop.gaia.localhost"], "wildcard": False, "this_week": 5, "weekly_limit": 5},
    )
    assert found["warnings"] == [WARNING.removeprefix("warning: ")]


def test_plan_without_read_target_reads_nothing(config_path: Path, sim: Sim) -> None:
    result = invoke(config_path, "plan", "-b", "develop", "--release", "r1", "--host", "local")
    assert result.exit_code == 0, result.output
    assert OFFLINE_CERTS in result.stdout.splitlines()
    assert result.stderr == ""
    assert sim.log == []


class Worker(Swarm):
    """The Engine API of a node that is in a swarm but no manager (its /info, as docker
    answers it)."""

    def __init__(self, target: str, socket: str = "") -> None:
        self.target = target
        self._info = {"Swarm": {"LocalNodeState": "active", "ControlAvailable": False}}

    def close(self) -> None:
        pass


def test_plan_read_target_on_a_worker_says_where_and_what_next(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usecases_plan, "Swarm", Worker)
    args = ("plan", "-b", "develop", "--release", "r1", "--read-target", "--host", "ssh://ops@w1")
    result = invoke(config_path, *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: plan --read-target could not read ssh://ops@w1: ssh://ops@w1 is a swarm "
        "worker; deploy through a manager node. Give --host a manager node, or plan offline "
        "(without --read-target: a first deploy is assumed)\n"
    )


def test_deploy_shows_the_certs_line_and_the_warning_before_it_runs(
    config_path: Path, sim: Sim
) -> None:
    result = invoke(config_path, "deploy", "-b", "develop", "--release", "r1", "--no-registry")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines.index(CERTS) < next(i for i, line in enumerate(lines) if "render" in line)
    assert result.stderr.splitlines() == [WARNING]


def test_plan_help_teaches_read_target() -> None:
    result = CliRunner().invoke(cli.main, ["plan", "--help"])
    assert result.exit_code == 0
    assert (
        "--read-target Read the target (a manager: --host or the config's target) as a "
        "deploy does, without a lock and changing nothing: the plan then shows the live "
        "colour, the steps a deploy would skip, and the certificates ordered with the week's "
        "count on the manager's clock (and a warning near the CA's limit). Default: offline, "
        "nothing is read there and the plan is that of a first deploy; --host alone does not "
        "read."
    ) in " ".join(result.stdout.split())
