"""Locks on the test bed's real Swarm: a holder is alive by its heartbeat, wherever it
runs; one that stopped beating is taken over; every wait ends at --lock-wait; shared
secrets rotate only on purpose.

A holder is a process of the test's own that takes a lock with the package's code
(tests/engine/lock_holder.py) and keeps it until its stdin closes. The commands that
meet it are the installed `swarm-deploy`, as a user runs it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from swarm_deploy import config as config_module
from tests.engine.conftest import Project

HOLDER = Path(__file__).with_name("lock_holder.py")
BRANCH = "feature/lockx"
STALE_AFTER = 10  # seconds: the tests' lock.stale_after


@pytest.fixture(scope="module")
def quick(project: Project) -> Path:
    """The tests' config, with locks that go stale after 10s."""
    return project.write_config("quick-locks.yml", {"lock": {"stale_after": f"{STALE_AFTER}s"}})


@contextmanager
def holding(
    project: Project, config: Path, scope: str, prefix: list[str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A process that holds a lock (`scope`: a branch, or `shared`) until the block ends."""
    argv = [*(prefix or []), sys.executable, str(HOLDER), str(config), scope]
    proc = subprocess.Popen(
        argv, cwd=project.root, env=project.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("held"), line + (proc.stderr.read() if proc.stderr else "")
    proc.pid_inside = int(line.split()[1])  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        if proc.poll() is None and proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=60)


def free_pid() -> int:
    """The smallest PID that is no process in this PID namespace."""
    return next(n for n in range(2, 1 << 22) if not Path(f"/proc/{n}").exists())


def test_a_live_holder_in_another_pid_namespace_keeps_its_lock_past_stale_after(
    project: Project, quick: Path
) -> None:
    """The holder runs in a PID namespace of its own, on this hostname, with a PID that
    is no process here: judged by PID and hostname it was gone, and a second command
    took its lock. It beats, so its lock holds, also once it is older than
    lock.stale_after."""
    pid = free_pid()
    # in the new namespace sh is PID 1, each /bin/true takes the next: python gets `pid`
    spawn = f'i=2; while [ $i -lt {pid} ]; do /bin/true; i=$((i+1)); done; "$@"; true'
    prefix = ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", spawn, "sh"]
    with holding(project, quick, BRANCH, prefix) as holder:
        assert holder.pid_inside == pid  # type: ignore[attr-defined]
        assert not Path(f"/proc/{pid}").exists()
        refused = project.cli("destroy", "--branch", BRANCH, "--lock-wait", "0", config=quick)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"(deploy of {BRANCH} by a test, pid {pid} on " in refused.stderr
        assert "It is alive: it refreshes its lock every 1.66667s." in refused.stderr
        time.sleep(STALE_AFTER + 4)
        later = project.cli("destroy", "--branch", BRANCH, "--lock-wait", "3", config=quick)
        assert later.returncode == 2, later.stdout + later.stderr
        found = re.search(r", (\d+)s ago; last heartbeat (\d+)s ago", later.stderr)
        assert found is not None, later.stderr
        age, silence = map(int, found.groups())
        assert age >= STALE_AFTER + 4, "older than stale_after, and held all the same"
        assert silence < STALE_AFTER
        refused_unlock = project.cli("unlock", "--branch", BRANCH, config=quick)
        assert refused_unlock.returncode == 2
        assert "that is alive" in refused_unlock.stderr
    after = project.cli("destroy", "--branch", BRANCH, "--lock-wait", "0", config=quick)
    assert after.returncode == 0, after.stderr
    assert f"nothing of {BRANCH} is on local: nothing to remove" in after.stdout


def test_a_zombie_holder_is_taken_over_once_its_heartbeat_is_stale(
    project: Project, quick: Path
) -> None:
    """Killed and never reaped, the holder is a zombie: kill(pid, 0) says it lives, and a
    waiter waited for it forever. Its heartbeat stopped: the next command takes over."""
    with holding(project, quick, BRANCH) as holder:
        holder.kill()
        deadline = time.monotonic() + 10
        while "State:\tZ" not in Path(f"/proc/{holder.pid}/status").read_text():
            assert time.monotonic() < deadline, "the holder did not become a zombie"
            time.sleep(0.1)
        took = project.cli("destroy", "--branch", BRANCH, "--lock-wait", "30", config=quick)
        assert "State:\tZ" in Path(f"/proc/{holder.pid}/status").read_text(), "still a zombie"
    assert took.returncode == 0, took.stdout + took.stderr
    assert (
        f"took over the lock of branch {BRANCH} from a holder that is gone: a test (deploy of "
        f"{BRANCH} by a test, pid {holder.pid} on "
    ) in took.stdout
    assert re.search(r"last heartbeat 1[0-3]s ago", took.stdout), took.stdout


def test_the_shared_lock_is_waited_for_no_longer_than_lock_wait(
    project: Project, quick: Path
) -> None:
    """Another branch holds the shared lock (alive: it beats) while develop reaches its
    shared steps: develop waits --lock-wait, says so, and stops before changing them."""
    first = project.deploy("develop", "lk1", config=quick)
    assert first.returncode == 0, first.stdout + first.stderr
    with holding(project, quick, "shared"):
        # --force: its shared steps run (this redeploy would skip them all, and take no lock)
        result = project.deploy("develop", "lk2", "--lock-wait", "5", "--force", config=quick)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "waiting for the lock of the shared stack (0s of 5s): a test (deploy of " in (
        result.stdout
    )
    assert (
        "error: another deploy of shared by a test holds the lock of the shared stack after "
        "waiting 5s: "
    ) in result.stderr
    status = project.cli("status", "--branch", "develop", "--json", config=quick)
    assert '"release": "lk1"' in status.stdout, "nothing switched"


def test_a_checkout_with_another_shared_secret_value_is_refused_before_any_change(
    project: Project, quick: Path
) -> None:
    """The shared Redis runs with develop's admin secret (deployed above): a deploy whose
    value differs would rotate it for every branch, and stops before it builds."""
    other = project.root / "other-redis-admin"
    other.write_text("an-older-redis-admin-value\n")
    data = project.config.read_text()
    assert "redis_admin:\n    file: examples/gaia/dev-secrets/redis_admin" in data
    stale = project.root / "stale-secret.yml"
    stale.write_text(
        quick.read_text().replace(
            "redis_admin:\n    file: examples/gaia/dev-secrets/redis_admin",
            f"redis_admin:\n    file: {other}",
        )
    )
    result = project.deploy("feature/x", "rot1", config=stale)
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        "deploying 'feature/x' would rotate shared secrets of gaiat-shared for every branch"
    ) in result.stderr
    assert f"  redis_admin: the value from file {other} is not the one redis runs with" in (
        result.stderr
    )
    assert "] build " not in result.stdout, "refused before it builds"


def test_unlock_frees_a_lock_that_sends_no_heartbeat(project: Project, quick: Path) -> None:
    """A lock of a swarm-deploy without heartbeats cannot be judged: refused, naming the
    command that frees it; that command frees it."""
    lock = f"gaiat_{config_module.load(quick).names(BRANCH).slug}_lock"
    old = '{"who": "ci@elsewhere", "host": "elsewhere", "pid": 4242, "started_at": "x", ' + (
        '"action": "deploy of feature/lockx old", "token": "t"}'
    )
    subprocess.run(
        ["docker", "config", "create", lock, "-"], input=old, text=True, check=True,
        capture_output=True,
    )  # fmt: skip
    try:
        refused = project.cli("destroy", "--branch", BRANCH, "--lock-wait", "3", config=quick)
        assert refused.returncode == 2
        assert f"free it with `swarm-deploy unlock --branch {BRANCH}`" in refused.stderr
        freed = project.cli("unlock", "--branch", BRANCH, config=quick)
        assert freed.returncode == 0, freed.stderr
        assert freed.stdout.startswith(f"freed the lock of branch {BRANCH}: ci@elsewhere")
    finally:
        subprocess.run(["docker", "config", "rm", lock], capture_output=True, check=False)
