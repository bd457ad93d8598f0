"""swarm-deploy.yml: the example loads; each mistake in config_cases/ gives its exact message.

A case file holds `error:` (the whole message) and either `patch:` (merged into the
example config; `<delete>` removes a key) or `text:` (a config of its own).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarm_deploy import config
from swarm_deploy.errors import BranchNotAllowedError, ConfigError, HostConflictError
from tests.conftest import EXAMPLE_CONFIG

CASES = sorted((Path(__file__).parent / "config_cases").glob("*.yml"))


def merge(base: Any, patch: Any) -> Any:
    if not (isinstance(base, dict) and isinstance(patch, dict)):
        return copy.deepcopy(patch)
    merged = dict(base)
    for key, value in patch.items():
        if value == "<delete>":
            merged.pop(key, None)
        else:
            merged[key] = merge(base.get(key), value)
    return merged


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_config_mistake_gives_its_exact_message(case: Path) -> None:
    spec = yaml.safe_load(case.read_text())
    if "text" in spec:
        text = spec["text"]
    else:
        example = yaml.safe_load(EXAMPLE_CONFIG.read_text())
        text = yaml.safe_dump(merge(example, spec["patch"]), sort_keys=False)
    with pytest.raises(ConfigError) as caught:
        config.parse(text)
    assert str(caught.value) == spec["error"]


def test_there_are_at_least_25_cases() -> None:
    assert len(CASES) >= 25


def test_example_config_loads_into_frozen_objects(example: config.Config) -> None:
    assert example.app == "gaia"
    assert example.services["backend"].port == 8000
    assert example.services["bot"].singleton
    assert example.images["bot"].platform == "linux/amd64"
    assert example.gate == config.Gate(
        consecutive=3, interval=0.25, timeout=120.0, start_grace=30.0
    )
    assert example.shared["postgres"].databases == ("main",)
    assert example.secrets["session_key"].env == "GAIA_SESSION_KEY"
    with pytest.raises(AttributeError):
        example.app = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        example.services["x"] = example.services["backend"]  # type: ignore[index]


def test_defaults_fill_what_the_config_leaves_out() -> None:
    minimal = config.parse(
        "app: demo\ndomain: demo.example.com\nregistry: ghcr.io/acme\n"
        "images: {web: {context: web}}\n"
        "services: {web: {image: web, port: 80, path: /, health: /health}}\n"
        "branches: [{match: main}]\n"
    )
    assert minimal.target == "local"
    assert minimal.gate == config.Gate()
    assert minimal.images["web"].platform == "linux/amd64"
    assert minimal.swarm == config.SwarmSettings(endpoint_mode="dnsrr", publish_mode="host")
    assert minimal.branch("main").host == "main.demo.example.com"


@pytest.mark.parametrize(
    ("branch", "host"),
    [
        ("main", "www.gaia.example.com"),
        ("develop", "develop.gaia.example.com"),
        ("feature-1", "feat1.gaia.example.com"),
        ("feature-2", "feat2.gaia.example.com"),
        ("feature/login", "feature-login-"),
    ],
)
def test_branch_rules_map_branches_to_hosts(example: config.Config, branch: str, host: str) -> None:
    assert example.branch(branch).host.startswith(host)


def test_a_branch_no_rule_allows_is_refused_with_the_rules(example: config.Config) -> None:
    with pytest.raises(BranchNotAllowedError) as caught:
        example.branch("hotfix/now")
    message = str(caught.value)
    assert "'hotfix/now' matches no rule" in message
    for rule in ("main", "develop", "feature-*", "feature/*"):
        assert f"  - {rule}\n" in message


@pytest.mark.parametrize(
    ("branch", "holder"),
    [
        ("preview/www", "branch rule 'main'"),
        ("preview/develop", "branch rule 'develop'"),
        ("preview/grafana", "the shared grafana"),
    ],
)
def test_a_branch_cannot_take_a_host_another_rule_or_the_shared_stack_holds(
    branch: str, holder: str
) -> None:
    example = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    example["branches"].append({"match": "preview/*", "host": "{1}"})
    cfg = config.parse(yaml.safe_dump(example))
    label = branch.removeprefix("preview/")
    with pytest.raises(HostConflictError) as caught:
        cfg.branch(branch)
    assert str(caught.value) == (
        f"branch '{branch}' would be served at {label}.gaia.example.com, which belongs to "
        f"{holder}; change the host of rule 'preview/*' in the config so that its branches "
        "cannot take that name"
    )
    assert cfg.branch("preview/docs").host == "docs.gaia.example.com"
    assert cfg.branch("main").host == "www.gaia.example.com"


def test_durations_accept_units_and_numbers() -> None:
    gate = config.parse(
        "app: demo\ndomain: demo.example.com\nregistry: ghcr.io/acme\n"
        "images: {web: {context: web}}\nservices: {web: {image: web}}\n"
        "branches: [{match: main}]\n"
        "gate: {interval: 500ms, timeout: 1m30s, start_grace: 4}\n"
    ).gate
    assert (gate.interval, gate.timeout, gate.start_grace) == (0.5, 90.0, 4.0)


def test_unreadable_config_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"cannot read the config \(No such file or directory\); pass --config PATH",
    ):
        config.load(tmp_path / "missing.yml")


@pytest.mark.parametrize(
    ("traefik", "publish_mode", "replicas", "expected"),
    [
        (True, "host", None, {"main": 2, "develop": 1}),
        (True, "ingress", None, {"main": 2, "develop": 2}),
        (False, "host", None, {"main": 1, "develop": 1}),
        (False, "ingress", 3, {"main": 3, "develop": 3}),
    ],
)
def test_each_branch_nginx_runs_two_tasks_behind_traefik_and_one_on_a_host_port(
    traefik: bool, publish_mode: str, replicas: int | None, expected: dict[str, int]
) -> None:
    """Behind Traefik two tasks, unless the rule publishes a host-mode port (one task per
    node can hold it); without Traefik one; edge/replicas wins when it is set."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["branches"] = [
        {"match": "main", "host": "www", "production": True},
        {"match": "develop", "port": 18080},
    ]
    data["swarm"] = {"publish_mode": publish_mode}
    if replicas is not None:
        data["edge"]["replicas"] = replicas
    if not traefik:
        del data["shared"]["traefik"]
    cfg = config.parse(yaml.safe_dump(data))
    assert {b: cfg.edge_replicas(cfg.branch(b).rule) for b in expected} == expected
