"""Locks against an in-memory Swarm: who is alive (by heartbeat, on the manager's clock),
how long a command waits, what it says, and what it removes.

The fake keeps configs as the Engine does: `docker config create` fails on a name that
exists, a label update stamps UpdatedAt with the manager's clock, and a removal by ID
removes only that config. What the real Engine does is proven in tests/engine/test_locks.py.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from swarm_deploy import config as config_module
from swarm_deploy import gate, pipeline, usecases
from swarm_deploy.engine import Json, Result
from swarm_deploy.errors import LockError, LockLostError
from swarm_deploy.lock import Lease, SwarmLock, unlock
from swarm_deploy.plan import Step
from swarm_deploy.runner import Runner
from tests.conftest import EXAMPLE_CONFIG
from tests.render_helpers import SENTINELS

# The manager's clock in these tests; the deployer's own (the machine running the tests)
# is some 40 minutes ahead of it, and must not matter.
MANAGER_NOW = datetime.now(UTC) - timedelta(minutes=40)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeSwarm:
    """Configs by ID, on a manager whose clock the test sets; also the executor of
    `docker config create` and `docker config rm`."""

    target = "local"

    def __init__(self) -> None:
        self.clock = MANAGER_NOW
        self.configs: dict[str, Json] = {}
        self.created = 0
        self.argv: list[list[str]] = []

    # Swarm
    def now(self) -> datetime:
        return self.clock

    def config(self, name: str) -> Json | None:
        return next((c for c in self.configs.values() if c["Spec"]["Name"] == name), None)

    def relabel_config(self, config_id: str, labels: dict[str, str]) -> bool:
        config = self.configs.get(config_id)
        if config is None:
            return False
        config["Spec"]["Labels"] |= labels
        config["UpdatedAt"] = stamp(self.clock)
        return True

    def another(self, timeout: int) -> FakeSwarm:
        return self

    def close(self) -> None: ...

    # Executor
    def run(self, argv: list[str], *, stdin: bytes | None = None, check: bool = True) -> Result:
        self.argv.append(list(argv))
        if argv[1] == "--host":
            argv = [argv[0], *argv[3:]]
        if argv[1:3] == ["config", "create"]:
            name = argv[-2]
            if self.config(name) is not None:
                return Result("", f"Error response from daemon: config {name} already exists", 1)
            assert stdin is not None
            self.put(name, json.loads(stdin), self.clock, self.clock)
            return Result(f"id{self.created}\n", "", 0)
        if argv[1:3] == ["config", "rm"]:
            found = self.configs.pop(argv[-1], None)
            return Result("", "" if found else f"config {argv[-1]} not found", 0 if found else 1)
        raise AssertionError(f"unexpected {argv}")

    def put(self, name: str, content: Any, created: datetime, beat: datetime) -> str:
        self.created += 1
        config_id = f"id{self.created}"
        data = content if isinstance(content, bytes) else json.dumps(content).encode()
        self.configs[config_id] = {
            "ID": config_id,
            "CreatedAt": stamp(created),
            "UpdatedAt": stamp(beat),
            "Spec": {"Name": name, "Labels": {}, "Data": base64.b64encode(data).decode()},
        }
        return config_id


class FakeClock:
    """The deployer's monotonic clock for waits: sleeping moves it, and the manager's."""

    def __init__(self, swarm: FakeSwarm) -> None:
        self.swarm = swarm
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        self.swarm.clock += timedelta(seconds=seconds)


class Heard:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.statuses: list[str] = []

    def begin(self, number: int, total: int, step: Step) -> None: ...

    def end(self, step: Step, seconds: float, ok: bool) -> None: ...

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


def branch_lock(swarm: FakeSwarm, target: str = "local") -> SwarmLock:
    swarm.target = target
    lock = SwarmLock.of_branch(swarm, swarm, CONFIG, "develop", "me", "deploy of develop v2")  # type: ignore[arg-type]
    lock.clock = FakeClock(swarm)  # type: ignore[assignment]
    return lock


def ago(seconds: float) -> datetime:
    return MANAGER_NOW - timedelta(seconds=seconds)


def test_a_live_holder_in_another_pid_namespace_with_this_hostname_keeps_its_lock() -> None:
    """Same hostname, a PID that is no process here: it lives, for its heartbeat is 3s
    old. A PID and a hostname said it was gone, and two deploys ran at once."""
    swarm = FakeSwarm()
    swarm.put("gaia_develop_lock", holder(), ago(4), ago(3))
    with pytest.raises(LockError) as refused, branch_lock(swarm).held(0, Heard()):
        pass
    assert str(refused.value) == (
        "another deploy of develop abc holds the lock of branch develop: ci (deploy of "
        f"develop abc, pid {OTHER_NAMESPACE_PID} on {HOST}) since "
        f"{ago(4):%Y-%m-%dT%H:%M:%SZ}, 4s ago; last heartbeat 3s ago.\n"
        "It is alive: it refreshes its lock every 5s. Wait for it with --lock-wait SECONDS. "
        "If it was stopped (killed, or its machine is off), its lock frees itself 30s after "
        "its last heartbeat, in at most 27s: run again with --lock-wait 31 or more."
    )
    assert list(swarm.configs) == ["id1"], "the live lock stays"


def test_a_holder_whose_heartbeat_stopped_is_gone_even_if_its_pid_lives_here() -> None:
    """This very process's PID (alive: a zombie or a stopped process looks the same to
    kill(pid, 0)), but no heartbeat for 30s: its lock is taken over at once."""
    swarm = FakeSwarm()
    swarm.put("gaia_develop_lock", holder(pid=os.getpid()), ago(300), ago(30))
    heard = Heard()
    with branch_lock(swarm).held(0, heard) as lease:
        assert lease.config_id == "id2"
        mine = json.loads(base64.b64decode(swarm.configs["id2"]["Spec"]["Data"]))
        assert (mine["who"], mine["stale_after"]) == ("me", 30.0)
    assert heard.notes == [
        "took over the lock of branch develop from a holder that is gone: ci (deploy of "
        f"develop abc, pid {os.getpid()} on {HOST}) since {ago(300):%Y-%m-%dT%H:%M:%SZ}, "
        "300s ago; last heartbeat 30s ago"
    ]
    assert ["docker", "config", "rm", "id1"] in swarm.argv, "removed by ID, not by name"
    assert swarm.configs == {}, "released at the end"


def test_ages_are_the_managers_clock_and_never_negative() -> None:
    """The deployer's clock is 40 minutes ahead of the manager's here: the lock is 4s old
    all the same (not 2404s, which broke it as stale). A stamp a little ahead of the
    manager that answered (the leader's clock) is 0s ago, not -1s."""
    swarm = FakeSwarm()
    swarm.put("gaia_develop_lock", holder(), ago(4), ago(-1))
    with pytest.raises(LockError) as refused, branch_lock(swarm).held(0, Heard()):
        pass
    assert ", 4s ago; last heartbeat 0s ago." in str(refused.value)


def test_a_deploy_longer_than_stale_after_keeps_its_lock_while_it_beats() -> None:
    swarm = FakeSwarm()
    swarm.put("gaia_develop_lock", holder(), ago(7200), ago(2))
    with pytest.raises(LockError) as refused, branch_lock(swarm).held(0, Heard()):
        pass
    assert ", 7200s ago; last heartbeat 2s ago." in str(refused.value)
    assert list(swarm.configs) == ["id1"]


def test_every_wait_is_bounded_and_says_where_it_is() -> None:
    """A live holder never lets go: the command waits its --lock-wait, saying so every
    30s, then refuses; the holder beats meanwhile, so it is never taken over."""
    swarm = FakeSwarm()
    holder_id = swarm.put("gaia_develop_lock", holder(), ago(1), ago(1))
    lock = branch_lock(swarm)
    clock = lock.clock
    beating = gate.Clock(
        now=clock.now, sleep=lambda s: (clock.sleep(s), swarm.relabel_config(holder_id, {}))
    )
    lock.clock = beating
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
    swarm = FakeSwarm()
    legacy = {k: v for k, v in holder().items() if k != "stale_after"}
    swarm.put(
        "gaia_develop_lock", legacy | {"started_at": "2026-01-01T00:00:00Z"}, ago(9000), ago(9000)
    )
    with pytest.raises(LockError) as refused, branch_lock(swarm, "ssh://root@vm2").held(0, Heard()):
        pass
    assert str(refused.value).endswith(
        "9000s ago; no heartbeat (taken by a swarm-deploy that sends none).\n"
        "It was taken by a swarm-deploy that sends no heartbeat, so whether it still runs "
        "cannot be told. If it is gone, free it with "
        "`swarm-deploy unlock --branch develop --host ssh://root@vm2`, then run this again."
    )


def test_unlock_frees_a_lock_whose_holder_is_gone_and_keeps_a_live_one() -> None:
    swarm = FakeSwarm()
    swarm.put("gaia_develop_lock", holder(), ago(60), ago(10))
    lock = branch_lock(swarm)
    with pytest.raises(LockError, match="held by a deploy of develop abc that is alive"):
        unlock(lock)
    assert list(swarm.configs) == ["id1"]
    swarm.clock += timedelta(seconds=20)
    assert unlock(lock).startswith("freed the lock of branch develop: ci (deploy of develop")
    assert swarm.configs == {}
    assert unlock(lock) == "branch develop is not locked (gaia_develop_lock is not on local)"


def test_a_command_whose_lock_was_taken_over_stops_at_its_next_step() -> None:
    """Its heartbeats did not reach the Swarm (a laptop asleep): another command took
    the lock. At its next step it finds out, runs nothing more, and leaves the new
    holder's lock alone."""
    swarm = FakeSwarm()
    lock = branch_lock(swarm)
    ran: list[str] = []
    with lock.held(0, Heard()) as lease:
        runner = Runner(swarm, swarm, Heard(), fence=lease.check)  # type: ignore[arg-type]
        runner.perform = ran.append  # type: ignore[method-assign]
        runner.run([Step("a", "one", ("first",))])  # type: ignore[arg-type]
        del swarm.configs[lease.config_id]
        swarm.put("gaia_develop_lock", holder(), MANAGER_NOW, MANAGER_NOW)
        with pytest.raises(LockLostError) as lost:
            runner.run([Step("b", "two", ("second",))])  # type: ignore[arg-type]
    assert ran == ["first"]
    assert str(lost.value).startswith(
        "the lock of branch develop was taken over by another command while this deploy of "
        "develop v2 ran: its heartbeats did not reach the Swarm for 30s"
    )
    assert [c["Spec"]["Name"] for c in swarm.configs.values()] == ["gaia_develop_lock"]


def test_the_heartbeat_stamps_the_lock_on_the_managers_clock() -> None:
    swarm = FakeSwarm()
    with branch_lock(swarm).held(0, Heard()) as lease:
        swarm.clock += timedelta(seconds=25)
        assert lease.beat(swarm)
        config = swarm.configs[lease.config_id]
        assert config["Spec"]["Labels"]["swarm-deploy.heartbeat"] == "1"
        assert config["UpdatedAt"] == stamp(MANAGER_NOW + timedelta(seconds=25))
    assert isinstance(lease, Lease)


def test_destroy_runs_its_data_jobs_under_the_shared_lock() -> None:
    """`destroy --drop-data` logs in with the shared admin secrets: its data jobs take
    the shared lock (one hold), its stacks and secrets do not."""
    events: list[str] = []

    @contextmanager
    def shared_lock() -> Iterator[None]:
        events.append("take the shared lock")
        yield
        events.append("release it")

    swarm = FakeSwarm()
    runner = Runner(swarm, swarm, Heard())  # type: ignore[arg-type]
    runner.perform = events.append  # type: ignore[method-assign]
    steps = [
        Step("stacks", "remove the stacks", ("stack rm",)),
        Step("secrets", "remove the secrets", ("secret rm",)),
        Step("data", "drop the databases", ("postgres job",)),
        Step("data", "drop the Redis keys", ("redis job",)),
    ]
    runner.run(steps, shared_lock)  # type: ignore[arg-type]
    assert events == [
        "stack rm", "secret rm", "take the shared lock", "postgres job", "redis job", "release it",
    ]  # fmt: skip


@pytest.mark.parametrize("command", ["destroy", "rollback"])
def test_destroy_and_rollback_wait_for_the_branchs_lock(
    command: str, monkeypatch: pytest.MonkeyPatch, project: pipeline.Project
) -> None:
    """Both take the branch's lock before they read or change anything."""
    swarm = FakeSwarm()
    swarm.target = CONFIG.target
    swarm.put("gaia_develop_lock", holder(), ago(4), ago(1))
    swarm.require_manager = lambda: None  # type: ignore[attr-defined]
    monkeypatch.setattr(usecases, "Swarm", lambda target: swarm)
    monkeypatch.setattr(usecases, "Executor", lambda root, env=None: swarm)
    monkeypatch.setattr(usecases, "read_remains", forbidden)
    monkeypatch.setattr(usecases, "read_facts", forbidden)

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
