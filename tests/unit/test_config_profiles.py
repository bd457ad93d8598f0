"""Profiles: swarm-deploy.<profile>.yml holds what differs from swarm-deploy.yml, merged onto it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from swarm_deploy import config, profiles
from swarm_deploy.errors import ConfigError, ConfigErrors
from tests.conftest import EXAMPLE_CONFIG, ROOT


@pytest.fixture
def base(tmp_path: Path) -> Path:
    shutil.copyfile(EXAMPLE_CONFIG, tmp_path / "swarm-deploy.yml")
    return tmp_path / "swarm-deploy.yml"


def profile(base: Path, text: str, name: str = "swarm-deploy.staging.yml") -> Path:
    path = base.with_name(name)
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    return str(caught.value)


def test_mappings_merge_by_key_lists_and_values_replace_and_nothing_removes(base: Path) -> None:
    staging = profile(
        base,
        "domain: staging.example.com\n"
        "gate: {interval: 1s}\n"
        "services: {backend: {uses: [postgres], metrics: ~}}\n"
        "branches: [{match: develop}]\n"
        "shared: {mongo: ~}\n",
    )
    merged = config.load(staging)
    whole = config.load(base)
    assert merged.domain == "staging.example.com"
    assert merged.gate == config.Gate(consecutive=3, interval=1.0, timeout=120.0, start_grace=30.0)
    backend = merged.services["backend"]
    assert (backend.uses, backend.metrics, backend.port, backend.replicas) == (
        ("postgres",), None, 8000, 2,
    )  # fmt: skip
    assert [rule.match for rule in merged.branches] == ["develop"]
    assert list(merged.shared) == [kind for kind in whole.shared if kind != "mongo"]
    assert merged.services["frontend"] == whole.services["frontend"]


def test_an_empty_profile_is_its_base(base: Path) -> None:
    assert config.load(profile(base, "")) == config.load(base)


def test_the_local_profile_states_only_differences() -> None:
    local = ROOT / "swarm-deploy.local.yml"
    assert profiles.base_of(local) == ROOT / "swarm-deploy.yml"
    stated = set(profiles.merge_layers(profiles.read_layers(local)).origins)
    assert "app" not in stated
    assert "services/frontend" not in stated
    assert config.load(local).app == "gaia"


def test_a_bad_key_of_the_profile_names_the_profile(base: Path) -> None:
    staging = profile(base, "gate: {intervall: 1s}\n")
    assert error_of(staging) == (
        f"{staging}: gate: unknown key 'intervall' (did you mean 'interval'?); valid keys "
        "here: consecutive, interval, timeout, start_grace"
    )


def test_a_bad_key_of_the_base_names_the_base(base: Path) -> None:
    base.write_text(base.read_text().replace("port: 8000", "port: eighty", 1))
    staging = profile(base, "domain: staging.example.com\n")
    assert error_of(staging) == (
        f"{base}: services/backend/port: should be an integer, got 'eighty'"
    )


def test_a_mapping_both_files_make_names_both(base: Path) -> None:
    staging = profile(base, "secrets: {session_key: {file: session_key.txt}}\n")
    assert error_of(staging) == (
        f"{base} + {staging}: secrets/session_key: should have exactly one of env: VARIABLE "
        "or file: PATH"
    )


def test_a_key_the_profile_removed_names_the_profile(base: Path) -> None:
    staging = profile(base, "services: {backend: {image: ~}}\n")
    assert error_of(staging) == f"{staging}: services/backend/image: is required"


def test_every_mistake_of_both_files_in_one_reading(base: Path) -> None:
    base.write_text(base.read_text().replace("port: 8000", "port: eighty", 1))
    staging = profile(base, "gate: {timeout: soon}\n")
    with pytest.raises(ConfigErrors) as caught:
        config.load(staging)
    assert str(caught.value) == (
        f"{base}: services/backend/port: should be an integer, got 'eighty'\n"
        f"{staging}: gate/timeout: should be a duration like 30s, 2m or 1m30s, got 'soon'"
    )


def test_a_profile_without_its_base_says_where_it_looked(tmp_path: Path) -> None:
    staging = tmp_path / "swarm-deploy.staging.yml"
    staging.write_text("domain: staging.example.com\n")
    assert error_of(staging) == (
        f"{tmp_path / 'swarm-deploy.yml'}: cannot read the base of the profile {staging} "
        "(No such file or directory); pass --config PATH"
    )


def test_a_profile_that_is_no_mapping_is_refused(base: Path) -> None:
    staging = profile(base, "- domain: staging.example.com\n")
    assert error_of(staging) == (
        f"{staging}: should be a mapping of the keys that differ from {base}, got a list"
    )


def test_a_file_named_otherwise_is_a_whole_config(base: Path) -> None:
    other = profile(base, "domain: staging.example.com\n", name="staging.yml")
    assert profiles.base_of(other) is None
    assert error_of(other) == (
        "images: is required\nservices: is required\napp: is required\nregistry: is required\n"
        "branches: is required"
    )
