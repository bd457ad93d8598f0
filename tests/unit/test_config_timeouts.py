"""Each wait of a deploy has its own limit, and a gate that could never pass is refused."""

from __future__ import annotations

from dataclasses import replace

from swarm_deploy import config, pipeline, usecases
from swarm_deploy.plan import EnsureData, HealthGate, Migrate, NginxTest, RunJob, WaitConverged
from tests.render_helpers import RELEASE, SENTINELS

MINIMAL = (
    "app: demo\ndomain: demo.example.com\nregistry: ghcr.io/acme\n"
    "images: {web: {context: web}}\nservices: {web: {image: web}}\n"
    "branches: [{match: main}]\n"
)


def test_timeouts_default_to_what_gate_timeout_gave_each_wait() -> None:
    assert config.parse(MINIMAL).timeouts == config.Timeouts(
        shared_start=120.0, edge_start=120.0, data_jobs=120.0, migrate=120.0
    )


def test_each_wait_of_a_deploy_is_bounded_by_its_own_setting(project: pipeline.Project) -> None:
    timeouts = config.Timeouts(shared_start=11, edge_start=12, data_jobs=13, migrate=14)
    gate = config.Gate(timeout=15)
    own = replace(project, config=replace(project.config, timeouts=timeouts, gate=gate))
    the_plan = usecases.plan(usecases.PlanRequest(own, "develop", RELEASE, environ=SENTINELS))
    waits = []
    for step in the_plan.steps:
        for action in step.actions:
            if isinstance(action, WaitConverged | RunJob | Migrate):
                waits.append((step.phase, action.timeout))
            elif isinstance(action, NginxTest | EnsureData):
                waits.append((step.phase, action.job.timeout))
            elif isinstance(action, HealthGate):
                waits.append((step.phase, action.gate.timeout))
    assert waits == [
        ("nginx", 12),
        ("shared", 11),
        ("databases", 13),
        ("databases", 13),
        ("databases", 13),
        ("edge", 12),
        ("migrate", 14),
        ("gate", 15),
    ]


def test_a_gate_that_can_pass_at_its_earliest_is_accepted() -> None:
    """At the border of gate_never_passes (config_cases): check 2 at 2s, before the
    deadline, so check 3 at 4s is made; and one check needs no time before the deadline."""
    just = config.parse(MINIMAL + "gate: {consecutive: 3, interval: 2s, timeout: 2.5s}\n")
    assert just.gate == config.Gate(consecutive=3, interval=2.0, timeout=2.5, start_grace=30.0)
    once = config.parse(MINIMAL + "gate: {consecutive: 1, timeout: 1s, start_grace: 10s}\n")
    assert once.gate == config.Gate(consecutive=1, interval=0.25, timeout=1.0, start_grace=10.0)
