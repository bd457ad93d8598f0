"""Fixtures every test directory shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm_deploy import config
from swarm_deploy.pipeline import Project

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "swarm-deploy.yml"


@pytest.fixture(scope="session")
def example() -> config.Config:
    return config.load(EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def project() -> Project:
    return Project.load(EXAMPLE_CONFIG)
