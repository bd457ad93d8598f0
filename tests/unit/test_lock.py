"""Locks against an in-memory Swarm: who is alive (by heartbeat, on the manager's clock),
how long a command waits, what it says, and what it removes.

The sim (tests/unit/swarm_sim.py) keeps configs as the Engine does: `docker config
create` fails on a name that exists, a label update stamps UpdatedAt with the manager's
clock, and a removal by ID removes only that config. What the real Engine does is
proven in tests/engine/test_locks.py.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from swarm_deploy import config as config_module
from swarm_deploy import gate, pipeline, usecases, usecases_deploy, usecases_target
from swarm_deploy.errors import LockError, LockLostError
from swarm_deploy.lock import Lease, SwarmLock, unlock
from swarm_deploy.plan import Phase, Step, run
from swarm_deploy.runner import Runner
from tests.conftest import EXAMPLE_CONFIG
from tests.render_helpers import SENTINELS
from tests.unit.swarm_sim import Sim, SimExecutor, SimSwarm, use_sim

# The manager's clock in these tests; the deployer's own (the machine running the tests)
# is some 40 minutes ahead of it, and must not matter.
MANAGER_NOW = datetime.now(UTC) - timedelta(minutes=40)


def manager() -> Sim:
    """An in-memory Swarm whose manager's clock is MANAGER_NOW."""
    sim = Sim()
    sim.now = MANAGER_NOW
    return sim


def put(sim: Sim, content: Any, created: datetime, beat: datetime) -> str:
    """The branch's lock as another command left it; its ID."""
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    return sim.add_config("gaia_develop_lock", data, created, beat)


class FakeClock:
    """The deployer's monotonic clock for waits: sleeping moves it, and the manager's."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.sim.advance(seconds)


class Heard:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.statuses: list[str] = []

    def begin(self, number: int, total: int, step: Step) -> None: ...

    def end(self, step: Step, seconds: float, ok: bool) -> None: ...

    def skipped(self, number: int, total: int, step: Step) -> None: ...

    def status(self, text: str) -> None:
        self.statuses.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)


CONFIG = config_module.load(EXAMPLE_CONFIG)
# a holder on this very machine, by its hostname, with a PID that is no process here:
# what a deployer in another PID namespace (a container, CI's job) writes
HOST = socket.gethostname()
OTHER_NAMESPACE_PID = 4_000_000


def holder(**change: Any) -> dict[str, Any]:
    return {
        "who": "ci", "action": "deploy of develop abc", "host": HOST,
        "pid": OTHER_NAMESPACE_PID, "token": "t", "stale_after": 30.0, **change,
    }  # fmt: skip


def branch_lock(sim: Sim, target: str = "local") -> SwarmLock:
    lock = SwarmLock.of_branch(
        SimExecutor(sim, Path()), SimSwarm(sim, target), CONFIG, "develop", "me",
        "deploy of develop v2",
    )  # fmt: skip
    clock = FakeClock(sim)
    lock.clock = gate.Clock(now=clock.now, sleep=clock.sleep)
    return lock


def ids(sim: Sim) -> list[str]:
    return [config.id for config in sim.configs.values()]


def ago(seconds: float) -> datetime:
    return MANAGER_NOW - timedelta(seconds=seconds)


def test_a_live_holder_in_another_pid_namespace_with_this_hostname_keeps_its_lock() -> None:
    """Same hostname, a PID that is no process here: it lives, for its heartbeat is 3s
    old. A PID and a hostname said it was gone, and two deploys ran at once."""
    sim = manager()
    put(sim, holder(), ago(4), ago(3))
    with pytest.raises(LockError) as refused, branch_lock(sim).held(0, Heard()):
        pass
    assert str(refused.value) == (
        "another deploy of develop abc holds the lock of branch develop: ci (deploy of "
        f"develop abc, pid {OTHER_NAMESPACE_PID} on {HOST}) since "
        f"{ago(4):%Y-%m-%dT%H:%M:%SZ}, 4s ago; last heartbeat 3s ago.\n"
        "It is alive: it refreshes its lock every 5s. Wait for it with --lock-wait SECONDS. "
        "If it was stopped (killed, or its machine is off), its lock frees itself 30s after "
        "its last heartbeat, in at most 27s: run again with --lock-wait 31 or more."
    )
    assert ids(sim) == ["id0"], "the live lock stays"


def test_a_holder_whose_heartbeat_stopped_is_gone_even_if_its_pid_lives_here() -> None:
    """This very process's PID (alive: a zombie or a stopped process looks the same to
    kill(pid, 0)), but no heartbeat for 30s: its lock is taken over at once."""
    sim = manager()
    put(sim, holder(pid=os.getpid()), ago(300), ago(30))
    heard = Heard()
    with branch_lock(sim).held(0, heard) as lease:
        assert lease.config_id == "id1"
        mine = json.loads(sim.configs["gaia_develop_lock"].data)
        assert (mine["who"], mine["stale_after"]) == ("me", 30.0)
    assert heard.notes == [
        "took over the lock of branch develop from a holder that is gone: ci (deploy of "
        f"develop abc, pid {os.getpid()} on {HOST}) since {ago(300):%Y-%m-%dT%H:%M:%SZ}, "
        "300s ago; last heartbeat 30s ago"
    ]
    assert "config rm id0" in sim.log, "removed by ID, not by name"
    assert sim.configs == {}, "released at the end"


def test_ages_are_the_managers_clock_and_never_negative() -> None:
    """The deployer's clock is 40 minutes ahead of the manager's here: the lock is 4s old
    all the same (not 2404s, which broke it as stale). A stamp a little ahead of the
    manager that answered (the leader's clock) is 0s ago, not -1s."""
    sim = manager()
    put(sim, holder(), ago(4), ago(-1))
    with pytest.raises(LockError) as refused, branch_lock(sim).held(0, Heard()):
        pass
    assert ", 4s ago; last heartbeat 0s ago." in str(refused.value)


def test_a_deploy_longer_than_stale_after_keeps_its_lock_while_it_beats() -> None:
    sim = manager()
    put(sim, holder(), ago(7200), ago(2))
    with pytest.raises(LockError) as refused, branch_lock(sim).held(0, Heard()):
        pass
    assert ", 7200s ago; last heartbeat 2s ago." in str(refused.value)
    assert ids(sim) == ["id0"]


def test_every_wait_is_bounded_and_says_where_it_is() -> None:
    """A live holder never lets go: the command waits its --lock-wait, saying so every
    30s, then refuses; the holder beats meanwhile, so it is never taken over."""
    sim = manager()
    holder_id = put(sim, holder(), ago(1), ago(1))
    lock = branch_lock(sim)
    clock = lock.clock

    def sleep_while_the_holder_beats(seconds: float) -> None:
        clock.sleep(seconds)
        assert SimSwarm(sim, "local").relabel_config(holder_id, {})

    lock.clock = gate.Clock(now=clock.now, sleep=sleep_while_the_holder_beats)
    heard = Heard()
    with pytest.raises(LockError) as refused, lock.held(65, heard):
        pass
    assert str(refused.value).startswith(
        "another deploy of develop abc holds the lock of branch develop after waiting 65s: "
    )
    since = (
        f"ci (deploy of develop abc, pid {OTHER_NAMESPACE_PID} on {HOST}) "
        f"since {ago(1):%Y-%m-%dT%H:%M:%SZ}"
    )
    waiting = "waiting for the lock of branch develop"
    assert heard.notes == [
        f"{waiting} (0s of 65s): {since}, 1s ago; last heartbeat 1s ago",
        f"{waiting} (30s of 65s): {since}, 31s ago; last heartbeat 0s ago",
        f"{waiting} (60s of 65s): {since}, 61s ago; last heartbeat 0s ago",
    ]
    assert heard.statuses[-1] == "waiting for the lock of branch develop: 64s of 65s"
    assert clock.now() == 65.0


def test_a_lock_without_heartbeat_is_never_taken_and_the_refusal_names_unlock() -> None:
    """A lock of a swarm-deploy that sent no heartbeat cannot be judged: a person frees
    it, with the command the message names (with --host when it is not the config's)."""
    sim = manager()
    legacy = {k: v for k, v in holder().items() if k != "stale_after"}
    put(sim, legacy | {"started_at": "2026-01-01T00:00:00Z"}, ago(9000), ago(9000))
    with pytest.raises(LockError) as refused, branch_lock(sim, "ssh://root@vm2").held(0, Heard()):
        pass
    assert str(refused.value).endswith(
        "9000s ago; no heartbeat (taken by a swarm-deploy that sends none).\n"
        "It was taken by a swarm-deploy that sends no heartbeat, so whether it still runs "
        "cannot be told. If it is gone, free it with "
        "`swarm-deploy unlock --branch develop --host ssh://root@vm2`, then run this again."
    )


def test_unlock_frees_a_lock_whose_holder_is_gone_and_keeps_a_live_one() -> None:
    sim = manager()
    put(sim, holder(), ago(60), ago(10))
    lock = branch_lock(sim)
    with pytest.raises(LockError, match="held by a deploy of develop abc that is alive"):
        unlock(lock)
    assert ids(sim) == ["id0"]
    sim.advance(20)
    assert unlock(lock).startswith("freed the lock of branch develop: ci (deploy of develop")
    assert sim.configs == {}
    assert unlock(lock) == "branch develop is not locked (gaia_develop_lock is not on local)"


def test_a_command_whose_lock_was_taken_over_stops_at_its_next_step() -> None:
    """Its heartbeats did not reach the Swarm (a laptop asleep): another command took
    the lock. At its next step it finds out, runs nothing more, and leaves the new
    holder's lock alone."""
    sim = manager()
    lock = branch_lock(sim)
    with lock.held(0, Heard()) as lease:
        runner = Runner(lock.executor, lock.swarm, Heard(), fence=lease.check)
        runner.run([Step(Phase.STACKS, "one", (run(["docker", "network", "rm", "first"]),))])
        del sim.configs["gaia_develop_lock"]
        put(sim, holder(), MANAGER_NOW, MANAGER_NOW)
        with pytest.raises(LockLostError) as lost:
            runner.run([Step(Phase.NETWORK, "two", (run(["docker", "network", "rm", "second"]),))])
    assert [line for line in sim.log if line.startswith("network")] == ["network rm first"]
    assert str(lost.value).startswith(
        "the lock of branch develop was taken over by another command while this deploy of "
        "develop v2 ran: its heartbeats did not reach the Swarm for 30s"
    )
    assert ids(sim) == ["id1"], "the new holder's lock stays"


def test_the_heartbeat_stamps_the_lock_on_the_managers_clock() -> None:
    sim = manager()
    with branch_lock(sim).held(0, Heard()) as lease:
        sim.advance(25)
        assert lease.beat(SimSwarm(sim, "local"))
        config = sim.configs["gaia_develop_lock"]
        assert config.labels["swarm-deploy.heartbeat"] == "1"
        assert config.updated == MANAGER_NOW + timedelta(seconds=25)
    assert isinstance(lease, Lease)


def test_destroy_runs_its_data_jobs_under_the_shared_lock() -> None:
    """`destroy --drop-data` logs in with the shared admin secrets: its data jobs take
    the shared lock (one hold), its stacks and secrets do not."""
    sim = manager()

    @contextmanager
    def shared_lock() -> Iterator[None]:
        sim.log.append("take the shared lock")
        yield
        sim.log.append("release it")

    runner = Runner(SimExecutor(sim, Path()), SimSwarm(sim, "local"), Heard())
    steps = [
        Step(Phase.STACKS, "remove the stacks", (run(["docker", "stack", "rm", "s"]),)),
        Step(Phase.SECRETS, "remove the secrets", (run(["docker", "network", "rm", "n"]),)),
        Step(Phase.DATA, "drop the databases", (run(["docker", "volume", "rm", "postgres"]),)),
        Step(Phase.DATA, "drop the Redis keys", (run(["docker", "volume", "rm", "redis"]),)),
    ]
    runner.run(steps, shared_lock)
    assert sim.log == [
        "stack rm s", "network rm n", "take the shared lock", "volume rm postgres",
        "volume rm redis", "release it",
    ]  # fmt: skip


@pytest.mark.parametrize("command", ["destroy", "rollback"])
def test_destroy_and_rollback_wait_for_the_branchs_lock(
    command: str, monkeypatch: pytest.MonkeyPatch, project: pipeline.Project
) -> None:
    """Both take the branch's lock before they read or change anything."""
    sim = manager()
    put(sim, holder(), ago(4), ago(1))
    use_sim(monkeypatch, sim)
    monkeypatch.setattr(usecases_target, "read_remains", forbidden)
    monkeypatch.setattr(usecases_deploy, "read_facts", forbidden)

    def run() -> None:
        if command == "destroy":
            usecases.destroy(usecases.DestroyRequest(project, "develop", lock_wait=0), Heard())
        else:
            request = usecases.RollbackRequest(project, "develop", environ=SENTINELS, lock_wait=0)
            usecases.rollback(request, Heard())

    with pytest.raises(LockError) as refused:
        run()
    assert str(refused.value).startswith(
        "another deploy of develop abc holds the lock of branch develop: "
    )


def forbidden(*_: object) -> None:
    raise AssertionError("read before the lock was taken")
