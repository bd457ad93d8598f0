"""A branch's nginx as two tasks, on the in-memory Swarm (tests/unit/swarm_sim.py): the
switch reaches every task, a switch that fails in the second puts the first back, and
status shows each task's colour when they disagree.

The local profile with `edge/replicas: 2` and an ingress-mode port (a host-mode port
cannot have two tasks: tests/unit/config_cases/edge_replicas_on_a_host_mode_port.yml).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from swarm_deploy import interrupts, usecases
from swarm_deploy.commands import LIVE_SCRIPT
from swarm_deploy.errors import DeployError
from swarm_deploy.pipeline import Project
from swarm_deploy.usecases import Outcome, StatusRequest
from tests.unit.swarm_sim import SWITCH, Sim, live_script, read_script
from tests.unit.test_interrupts import EDGE, project, run, sim

__all__ = ["project", "sim"]

SECOND = f"{EDGE}.2"
LIVE = "/etc/nginx/live"
BLUE, GREEN = "blue", "green"
ERROR = "sh: 1: cannot create /etc/nginx/live/green: Read-only file system"


@pytest.fixture
def two(project: Project) -> Project:
    """The local profile, its nginx as two tasks behind an ingress-mode port."""
    path = project.config.root / "swarm-deploy.yml"
    data = yaml.safe_load(path.read_text())
    data["edge"]["replicas"] = 2
    data["swarm"] = {"publish_mode": "ingress"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return Project.load(Path(path))


def colours(sim: Sim) -> list[tuple[str | None, str | None]]:
    """(what live/ names, what nginx serves) in each nginx task."""
    return [(sim.edge(EDGE, slot).file, sim.edge(EDGE, slot).served) for slot in (1, 2)]


def switch_line(container: str) -> str:
    """The switch to green in one task: green named in live/, then checked."""
    return live_script(container, GREEN, *SWITCH)


def test_the_switch_reaches_every_nginx_task_in_turn_one_command_each(
    two: Project, sim: Sim
) -> None:
    assert isinstance(run(two, sim, "r1"), Outcome)
    assert colours(sim) == [(BLUE, "blue"), (BLUE, "blue")]
    mark = len(sim.log)
    assert isinstance(run(two, sim, "r2"), Outcome)
    assert colours(sim) == [(GREEN, "green"), (GREEN, "green")]
    start = sim.log.index(switch_line(f"container-of-{EDGE}"), mark)
    assert sim.log[start : start + 2] == [
        switch_line(f"container-of-{EDGE}"),
        switch_line(f"container-of-{SECOND}"),
    ]
    assert "exec" not in sim.log[start + 2]
    assert sim.outages == []


def test_a_switch_that_fails_in_the_second_task_puts_the_first_back(two: Project, sim: Sim) -> None:
    assert isinstance(run(two, sim, "r1"), Outcome)
    sim.edge(EDGE, 2).write_error = ERROR
    mark = len(sim.log)
    failed = run(two, sim, "r2")
    assert isinstance(failed, DeployError)
    assert str(failed) == (
        f"the switch to green failed in nginx task {EDGE}.2 after it had succeeded in "
        f"{EDGE}.1, which got its previous colour back:\n"
        f"could not name green in {LIVE}: {ERROR}\n"
        f"naming the previous colour again: could not name blue in {LIVE}: {ERROR}\n"
        "rolled back: removed gaia-develop-green; gaia-develop-blue stays live.\n"
        "next: fix the release, then `swarm-deploy deploy --branch develop`; "
        "`swarm-deploy status --branch develop` shows what runs"
    )
    # both tasks serve blue, and their live/ says so: none was left on green
    assert colours(sim) == [(BLUE, "blue"), (BLUE, "blue")]
    assert not sim.stack("gaia-develop-green")
    assert sim.services[EDGE].labels["swarm-deploy.release"] == "r1"
    assert sim.outages == []
    # the second task never named green (nor blue again: it never served green); then
    # the first task gets blue back
    put_back = sim.log.index(switch_line(f"container-of-{SECOND}"), mark) + 1
    assert sim.log[put_back] == live_script(f"container-of-{EDGE}", BLUE)


def test_tasks_sharing_one_volume_get_the_colour_they_had_when_the_second_fails(
    two: Project, sim: Sim
) -> None:
    """On one node both tasks read one live/: once the first task's switch named green
    there, the second finds green too; the colour put back is the one read before
    anything was named. (The second runs an nginx.conf from before live/, as while an
    edge update rolls out, and keeps serving blue.)"""
    sim.one_volume = True
    assert isinstance(run(two, sim, "r1"), Outcome)
    sim.edge(EDGE, 2).stuck = True
    failed = run(two, sim, "r2")
    assert isinstance(failed, DeployError)
    assert str(failed).startswith(
        f"the switch to green failed in nginx task {EDGE}.2 after it had succeeded in "
        f"{EDGE}.1, which got its previous colour back:\n"
        "after the switch to green, the public route gave /api/health -> blue, "
        "/health -> blue\n"
        "rolled back: removed gaia-develop-green;"
    ), str(failed)
    assert colours(sim) == [(BLUE, "blue"), (BLUE, "blue")]
    assert sim.outages == []
    # the second task found green (the first had named it), so it could not name blue
    # again itself: blue goes back in both, the second first
    put_back = sim.log.index(switch_line(f"container-of-{SECOND}")) + 1
    assert sim.log[put_back : put_back + 2] == [
        live_script(f"container-of-{SECOND}", BLUE),
        live_script(f"container-of-{EDGE}", BLUE),
    ]


def test_status_shows_each_task_colour_when_they_disagree_and_a_deploy_repairs_it(
    two: Project, sim: Sim
) -> None:
    """A task that started on a node whose live-colour volume is empty answers 503."""
    assert isinstance(run(two, sim, "r1"), Outcome)
    second = sim.edge(EDGE, 2)
    second.file = second.served = None
    (found,) = usecases.status(StatusRequest(two)).branches
    assert (found.live_colour, found.release) == ("blue", "r1")
    assert found.problems == (
        f"the nginx tasks serve different colours ({EDGE}.1 blue, {EDGE}.2 no colour): blue "
        "is taken as live, and every task's live/ is made to name it",
    )
    assert isinstance(run(two, sim, "r1"), Outcome)
    assert colours(sim) == [(BLUE, "blue"), (BLUE, "blue")]
    (repaired,) = usecases.status(StatusRequest(two)).branches
    assert repaired.problems == ()


def test_what_each_task_serves_and_its_file_are_read_in_one_command_per_task(
    two: Project, sim: Sim
) -> None:
    """One `docker exec` per nginx task (an ssh session each for a task on another node),
    not one for the answer and another for the file."""
    assert isinstance(run(two, sim, "r1"), Outcome)
    mark = len(sim.log)
    usecases.status(StatusRequest(two))
    assert [line for line in sim.log[mark:] if line.startswith("exec")] == [
        read_script(f"container-of-{name}", "http://127.0.0.1/api/health")
        for name in (EDGE, SECOND)
    ]


def test_a_deploy_interrupted_between_two_tasks_puts_the_switched_one_back(
    two: Project, sim: Sim
) -> None:
    """SIGTERM once the first task serves green, before the second is switched: the deploy
    undoes the switch in the first rather than leave users on both colours."""
    assert isinstance(run(two, sim, "r1"), Outcome)
    failed = run(two, sim, "r2", "switch:verified:TERM")
    assert isinstance(failed, DeployError)
    assert str(failed).startswith(
        "interrupted (SIGTERM)\nrolled back: removed gaia-develop-green; "
        "gaia-develop-blue stays live."
    ), str(failed)
    assert colours(sim) == [(BLUE, "blue"), (BLUE, "blue")]
    assert not sim.stack("gaia-develop-green")
    assert sim.outages == []


def test_a_second_task_docker_cannot_reach_still_gets_the_first_put_back(
    two: Project, sim: Sim
) -> None:
    """The switch's command never ran in the second task (docker's own error): the first,
    switched already, is put back; docker's words name the command, not the script."""
    assert isinstance(run(two, sim, "r1"), Outcome)
    gone = "Error response from daemon: No such container: container-of-" + SECOND
    sim.refused[f"exec container-of-{SECOND} sh -c {shlex.quote(LIVE_SCRIPT)}"] = gone
    failed = run(two, sim, "r2")
    assert isinstance(failed, DeployError)
    assert str(failed).startswith(
        f"the switch to green failed in nginx task {EDGE}.2 after it had succeeded in "
        f"{EDGE}.1, which got its previous colour back:\n"
        f"`docker exec container-of-{SECOND} sh -c <commands.LIVE_SCRIPT>` exited 1:\n{gone}\n"
        "rolled back: removed gaia-develop-green;"
    ), str(failed)
    assert colours(sim) == [(BLUE, "blue"), (BLUE, "blue")]
    assert sim.outages == []


def test_an_undo_that_cannot_put_a_task_back_removes_neither_colour(
    two: Project, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM once the first task serves green; naming blue there again fails, so it
    serves green still: removing green would leave its users nothing."""
    assert isinstance(run(two, sim, "r1"), Outcome)
    fire = interrupts.fire

    def naming_fails_then_fire(signal_name: str) -> None:
        sim.edge(EDGE, 1).write_error = ERROR
        fire(signal_name)

    monkeypatch.setattr(interrupts, "fire", naming_fails_then_fire)
    failed = run(two, sim, "r2", "switch:verified:TERM")
    assert isinstance(failed, DeployError)
    assert str(failed) == (
        "interrupted (SIGTERM)\ncould not put nginx back on gaia-develop-blue:\n"
        f"{EDGE}.1: could not name blue in {LIVE}: {ERROR}\n"
        "neither colour was removed.\n"
        "next: once the branch's nginx answers, `swarm-deploy deploy --branch develop` "
        "repairs the rest"
    )
    assert colours(sim) == [(GREEN, "green"), (BLUE, "blue")]
    assert sim.stack("gaia-develop-green")
    assert sim.stack("gaia-develop-blue")
    assert sim.outages == []
    sim.edge(EDGE, 1).write_error = None
    assert isinstance(run(two, sim, "r2"), Outcome)
    assert colours(sim) == [(GREEN, "green"), (GREEN, "green")]
    assert sim.outages == []
