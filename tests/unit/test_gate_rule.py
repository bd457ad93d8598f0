"""The rule `check` holds gate settings to is the health gate's own: at its border, the
gate (run against the in-memory Swarm, every probe answering 200 at once) passes just
above it and fails at it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from swarm_deploy import config
from swarm_deploy.errors import ConfigError, DeployError
from swarm_deploy.pipeline import Project
from swarm_deploy.usecases import Outcome
from tests.unit.swarm_sim import Sim
from tests.unit.test_interrupts import project, run, sim

__all__ = ("project", "sim")  # the fixtures, used by name

SETTINGS = "gate: {consecutive: 3, interval: 2s, start_grace: 10s, timeout: %s}\n"
MINIMAL = (
    "app: demo\ndomain: demo.example.com\nregistry: ghcr.io/acme\n"
    "images: {web: {context: web}}\nservices: {web: {image: web}}\n"
    "branches: [{match: main}]\n"
)


def with_gate(project: Project, timeout: float) -> Project:
    gate = config.Gate(consecutive=3, interval=2.0, start_grace=10.0, timeout=timeout)
    return replace(project, config=replace(project.config, gate=gate))


def test_just_above_the_border_check_accepts_and_the_gate_passes(
    project: Project, sim: Sim
) -> None:
    assert config.parse(MINIMAL + SETTINGS % "2.5s").gate.timeout == 2.5
    assert isinstance(run(with_gate(project, 2.5), sim, "r1"), Outcome)


def test_at_the_border_check_refuses_and_the_gate_can_never_pass(
    project: Project, sim: Sim
) -> None:
    with pytest.raises(ConfigError):
        config.parse(MINIMAL + SETTINGS % "2s")
    failed = run(with_gate(project, 2.0), sim, "r1")
    assert isinstance(failed, DeployError)
    # check 2 came at 2s, the deadline: check 3 never did
    assert str(failed).startswith(
        "gate for blue: no 3 consecutive 200s through the preview route within 2s: "
        "/api/health: 2 probes, best run 2 of 3 consecutive 200s, last answer 200;"
    )
