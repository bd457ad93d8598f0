"""Convergence and health judgements, from what the Engine API reports (fixtures)."""

from __future__ import annotations

from typing import Any

import pytest

from swarm_deploy import facts, gate
from swarm_deploy.engine import parse_time

T0 = "2026-11-27T06:00:00.123456789Z"
LATER = "2026-11-27T06:00:05.5Z"
EARLIER = "2026-11-27T05:59:00Z"


def service(
    name: str, running: int, desired: int, update: dict[str, str] | None = None
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "ID": f"id-{name}",
        "Spec": {"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "app:1"}}},
        "CreatedAt": EARLIER,
        "UpdatedAt": T0,
        "ServiceStatus": {"RunningTasks": running, "DesiredTasks": desired},
    }
    if update:
        found["UpdateStatus"] = update
    return found


def task(
    name: str, state: str, created: str = LATER, err: str = "", code: int | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state, "Err": err}
    if code is not None:
        status["ContainerStatus"] = {"ExitCode": code}
    return {
        "ID": f"task-{name}", "ServiceID": f"id-{name}", "Slot": 1, "CreatedAt": created,
        "Status": status,
    }  # fmt: skip


def judge_services(services: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> gate.Verdict:
    """The gate's judgement of what the Engine reported, read as facts.py reads it."""
    return gate.judge_services(
        [facts.Service.parse(s) for s in services], [facts.Task.parse(t) for t in tasks]
    )


def judge_job(tasks: list[dict[str, Any]]) -> gate.Verdict:
    return gate.judge_job([facts.Task.parse(t) for t in tasks])


def test_converged_when_every_task_runs() -> None:
    verdict = judge_services([service("a", 2, 2), service("b", 1, 1)], [])
    assert verdict == gate.Verdict(True, None, "all tasks running")


def test_waiting_names_what_is_missing() -> None:
    verdict = judge_services([service("a", 1, 2), service("b", 1, 1)], [task("a", "starting")])
    assert verdict == gate.Verdict(False, None, "a 1/2")


def test_a_failed_task_of_the_current_spec_fails_at_once() -> None:
    tasks = [task("a", "failed", err="task: non-zero exit (3)", code=3)]
    verdict = judge_services([service("a", 0, 2)], tasks)
    assert verdict.failure == "a: task.1 failed: task: non-zero exit (3) (exit code 3)"


GLITCH = (
    "starting container failed: unable to remount dir as readonly: mount tmpfs:/var/lib/docker/"
    "containers/0e4b/mounts/secrets, flags: 0x21, data: uid=0,gid=0: device or resource busy"
)


def test_one_engine_glitch_is_waited_out_a_second_is_a_failure() -> None:
    once = judge_services([service("a", 1, 2)], [task("a", "failed", err=GLITCH, code=128)])
    assert once == gate.Verdict(False, None, "a 1/2")
    twice = [task("a", "failed", err=GLITCH, code=128)] * 2
    verdict = judge_services([service("a", 1, 2)], twice)
    assert verdict.failure == f"a: task.1 failed: {GLITCH} (exit code 128)"


def test_a_real_failure_beside_a_glitch_is_the_one_reported() -> None:
    tasks = [
        task("a", "failed", err=GLITCH, code=128),
        task("a", "failed", err="task: non-zero exit (3)", code=3),
    ]
    verdict = judge_services([service("a", 0, 2)], tasks)
    assert verdict.failure == "a: task.1 failed: task: non-zero exit (3) (exit code 3)"


def test_a_failed_task_from_before_the_update_is_history() -> None:
    tasks = [task("a", "failed", created=EARLIER, err="old crash", code=1)]
    assert judge_services([service("a", 2, 2)], tasks).done


def test_a_rejected_task_fails_with_its_error() -> None:
    tasks = [task("a", "rejected", err="No such image: registry/app@sha256:abc")]
    verdict = judge_services([service("a", 0, 1)], tasks)
    assert verdict.failure == "a: task.1 rejected: No such image: registry/app@sha256:abc"


def test_a_rolled_back_update_is_a_failure_not_a_success() -> None:
    rolled = {"State": "rollback_completed", "Message": "rollback completed"}
    verdict = judge_services([service("a", 2, 2, rolled)], [])
    assert verdict.failure == "a: update rollback_completed (rollback completed)"
    assert not verdict.done


def test_an_update_in_progress_is_not_done() -> None:
    updating = {"State": "updating", "Message": "update in progress"}
    assert judge_services([service("a", 2, 2, updating)], []) == gate.Verdict(False, None, "a 2/2")


def test_jobs_complete_or_fail() -> None:
    assert judge_job([task("j", "complete")]).done
    failed = judge_job([task("j", "failed", err="task: non-zero exit (2)", code=2)])
    assert failed.failure == "task.1 failed: task: non-zero exit (2) (exit code 2)"
    assert judge_job([]) == gate.Verdict(False, None, "pending")


def test_the_daemons_clock_is_read_with_its_offset() -> None:
    """`/info`'s SystemTime is in the daemon's own time zone; CreatedAt is in UTC."""
    assert parse_time("2026-11-30T13:44:53.953592653+01:00") == parse_time(
        "2026-11-30T12:44:53.953592Z"
    )
    assert parse_time("2026-11-30T07:44:53-05:00").isoformat() == "2026-11-30T12:44:53+00:00"


def test_engine_timestamps_keep_their_order() -> None:
    assert parse_time("2026-11-27T06:00:00.9Z") > parse_time("2026-11-27T06:00:00.123456789Z")


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_poll_gives_up_at_the_deadline_with_the_last_status() -> None:
    fake = FakeClock()
    clock = gate.Clock(now=fake.now, sleep=fake.sleep)
    seen: list[str] = []
    verdict = gate.poll(lambda: gate.Verdict(False, None, "a 0/1"), 3, 1, clock, seen.append)
    assert verdict == gate.Verdict(False, None, "a 0/1")
    assert fake.slept == [1, 1, 1]
    assert seen == ["a 0/1"] * 4


def test_poll_looks_every_interval_however_long_a_look_takes() -> None:
    fake = FakeClock()
    clock = gate.Clock(now=fake.now, sleep=fake.sleep)
    looked: list[float] = []

    def slow_look() -> gate.Verdict:
        looked.append(fake.t)
        fake.t += 0.3
        return gate.Verdict(False, None, "a 0/1")

    gate.poll(slow_look, 1.2, 0.5, clock)
    assert looked == pytest.approx([0.0, 0.5, 1.0])


def test_a_round_longer_than_the_interval_is_followed_at_once() -> None:
    fake = FakeClock()
    fake.t = 0.7
    gate.Clock(now=fake.now, sleep=fake.sleep).sleep_rest(0.0, 0.5)
    assert fake.slept == [0.0]


def test_health_needs_consecutive_200s_on_every_path() -> None:
    count = gate.HealthCount(("/api/health", "/health"), 3)
    for status in ("200", "200", "500", "200", "200"):
        count.record("/api/health", status)
        count.record("/health", "200")
    assert not count.passed
    count.record("/api/health", "200")
    assert count.passed
    assert count.status() == (
        "/api/health: ok, its last 3 of 6 probes answered 200; "
        "/health: ok, its last 5 of 5 probes answered 200"
    )


def test_a_gate_that_fails_says_how_far_each_path_got_in_words() -> None:
    """Was `/api/health 0/3 (last: 500), /health 91/3 (last: 200)`: 91 of 3?"""
    count = gate.HealthCount(("/api/health", "/health", "/ready"), 3)
    assert count.status() == (
        "/api/health: not probed yet; /health: not probed yet; /ready: not probed yet"
    )
    for status in ("200", "200", "500", "200", "502"):
        count.record("/api/health", status)
        count.record("/health", "200")
    count.record("/ready", "no answer")
    assert not count.passed
    assert count.status() == (
        "/api/health: 5 probes, best run 2 of 3 consecutive 200s, last answer 502; "
        "/health: ok, its last 5 of 5 probes answered 200; "
        "/ready: 1 probe, best run 0 of 3 consecutive 200s, last answer no answer"
    )
