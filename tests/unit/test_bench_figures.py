"""The benchmark's arithmetic (bench/figures.py): time to live from the reporter's step
events, the step shares, when a Swarm update serves the new release alone."""

from __future__ import annotations

from typing import Any

from bench.figures import (
    Change,
    Share,
    Spread,
    StepTime,
    ratio,
    release_stack,
    serves_only,
    shares,
    switched,
)


def step(phase: str, begin: float, end: float) -> StepTime:
    return StepTime(phase, f"{phase} step", begin, end)


def deploy(start: float, end: float, *steps: StepTime) -> Change:
    return Change("swarm-deploy", 1, "a", start, end, switched(steps), steps)


ONE = deploy(
    100.0,
    120.0,
    step("databases", 101.0, 104.0),
    step("gate", 104.0, 110.0),
    step("switch", 110.5, 111.0),
    step("drain", 111.0, 117.0),
    step("prune", 117.0, 119.0),
)


def test_time_to_live_ends_with_the_switch_step_and_total_with_the_return() -> None:
    assert ONE.live == 111.0
    assert ONE.time_to_live == 11.0
    assert ONE.total == 20.0
    assert ONE.window == (110.5, 120.0)


def test_a_drain_handed_off_extends_the_window_until_the_old_release_is_removed() -> None:
    handed_off = Change("swarm-deploy", 1, "a", 100.0, 106.0, 105.0, (), removed=113.0)
    assert handed_off.total == 6.0
    assert handed_off.until_removed == 13.0
    assert handed_off.window == (100.0, 113.0)
    assert ONE.until_removed is None


def test_a_deploy_that_never_switched_has_no_time_to_live() -> None:
    stopped = deploy(100.0, 108.0, step("gate", 101.0, 107.0))
    assert stopped.live is None
    assert stopped.time_to_live is None
    assert stopped.window == (100.0, 108.0)


def test_the_last_switch_step_is_the_one_that_makes_the_release_live() -> None:
    steps = (step("switch", 1.0, 2.0), step("record", 2.0, 3.0), step("switch", 3.0, 4.5))
    assert switched(steps) == 4.5


def test_seconds_per_phase_with_what_no_step_accounts_for() -> None:
    two_builds = deploy(0.0, 10.0, step("build", 1.0, 3.0), step("build", 3.5, 6.0))
    assert two_builds.by_phase() == {
        "build": 4.5,
        "before the steps": 1.0,
        "between steps": 0.5,
        "after the steps": 4.0,
    }
    assert ONE.by_phase() == {
        "databases": 3.0,
        "gate": 6.0,
        "switch": 0.5,
        "drain": 6.0,
        "prune": 2.0,
        "before the steps": 1.0,
        "between steps": 0.5,
        "after the steps": 1.0,
    }


def test_a_share_is_the_median_over_deploys_counting_a_skipped_phase_as_zero() -> None:
    skipped = deploy(0.0, 10.0, step("gate", 0.0, 4.0), step("switch", 4.0, 5.0))
    again = deploy(0.0, 40.0, step("databases", 0.0, 4.0), step("gate", 4.0, 24.0))
    found = shares([ONE, skipped, again])
    assert found == [
        Share("databases", 3.0, 10.0, 2),
        Share("gate", 6.0, 40.0, 3),
        Share("switch", 0.5, 2.5, 2),
        Share("drain", 0.0, 0.0, 1),
        Share("prune", 0.0, 0.0, 1),
        Share("before the steps", 0.0, 0.0, 3),
        Share("between steps", 0.0, 0.0, 3),
        Share("after the steps", 5.0, 40.0, 3),
    ]


def task(service: str, image: str, state: str, desired: str = "running") -> dict[str, Any]:
    return {
        "ServiceID": service,
        "DesiredState": desired,
        "Status": {"State": state},
        "Spec": {"ContainerSpec": {"Image": image}},
    }


WANTED = {"s1": ("repo/backend@sha256:new", 2)}


def test_the_new_release_serves_alone_once_its_replicas_run_and_no_old_task_does() -> None:
    tasks = [
        task("s1", "repo/backend@sha256:new", "running"),
        task("s1", "repo/backend@sha256:new", "running"),
        task("s1", "repo/backend@sha256:old", "shutdown", "shutdown"),
        task("other", "repo/backend@sha256:old", "running"),
    ]
    assert serves_only(tasks, WANTED)


def test_an_old_task_still_running_while_it_is_stopped_can_still_answer() -> None:
    tasks = [
        task("s1", "repo/backend@sha256:new", "running"),
        task("s1", "repo/backend@sha256:new", "running"),
        task("s1", "repo/backend@sha256:old", "running", "shutdown"),
    ]
    assert not serves_only(tasks, WANTED)


def test_fewer_new_tasks_than_replicas_is_not_live() -> None:
    tasks = [
        task("s1", "repo/backend@sha256:new", "running"),
        task("s1", "repo/backend@sha256:new", "starting"),
    ]
    assert not serves_only(tasks, WANTED)


def test_every_service_of_a_stack_must_serve_its_new_image() -> None:
    wanted = {**WANTED, "s2": ("repo/frontend@sha256:new", 1)}
    tasks = [
        task("s1", "repo/backend@sha256:new", "running"),
        task("s1", "repo/backend@sha256:new", "running"),
        task("s2", "repo/frontend@sha256:old", "running"),
    ]
    assert not serves_only(tasks, wanted)
    assert serves_only([*tasks[:2], task("s2", "repo/frontend@sha256:new", "running")], wanted)


def test_a_rendered_colour_stack_changed_in_place_to_the_other_release() -> None:
    rendered: dict[str, Any] = {
        "version": "3.9",
        "services": {
            "backend": {
                "image": "repo/backend@sha256:a",
                "environment": {"APP_VERSION": "a", "PORT": "8000"},
                "deploy": {"replicas": 2, "mode": "replicated"},
            },
            "bot": {
                "image": "repo/bot@sha256:a",
                "environment": {"APP_VERSION": "a"},
                "deploy": {"replicas": 0},
            },
        },
        "networks": {"branch": {"external": True}},
    }
    changed = release_stack(
        rendered,
        {"backend": "repo/backend@sha256:b", "bot": "repo/bot@sha256:b"},
        "b",
        {"backend": 2, "bot": 1},
    )
    assert changed == {
        "version": "3.9",
        "services": {
            "backend": {
                "image": "repo/backend@sha256:b",
                "environment": {"APP_VERSION": "b", "PORT": "8000"},
                "deploy": {"replicas": 2, "mode": "replicated"},
            },
            "bot": {
                "image": "repo/bot@sha256:b",
                "environment": {"APP_VERSION": "b"},
                "deploy": {"replicas": 1},
            },
        },
        "networks": {"branch": {"external": True}},
    }
    assert rendered["services"]["bot"]["deploy"] == {"replicas": 0}, "the rendered file unchanged"


def test_spread_and_ratios_against_swarm_deploy() -> None:
    assert Spread.of([3.0, 1.0, 2.0, 10.0]) == Spread(2.5, 10.0)
    assert str(Spread(2.5, 10.0)) == "2.5 / 10.0"
    assert Spread.of([]) is None
    assert ratio(30.0, 15.0) == "x2.0"
    assert ratio(5.0, 20.0) == "x0.2"
    assert ratio(272.0, 0.0) == "272 vs 0"
    assert ratio(0.0, 0.0) == "x1.0"
    assert ratio(None, 3.0) == "-"
