"""One command per branch at a time, held on the Swarm itself, alive by its heartbeat.

A lock is a Swarm config named `<app>_<scope>_lock`: creating a config whose name
exists fails, atomically, on the managers' raft store, so two deployers on two machines
cannot both hold it. Its content says who holds it (who, what, pid and host: shown to
people, never used to judge). Each branch has its own lock (the scope is its slug),
held by deploy, rollback and destroy for their whole run, so different branches deploy
concurrently. What they share (the `shared` scope: shared secrets, the shared stack and
its configs, the data jobs that log in with the shared admin secrets) has one more
lock, held only while a command changes or uses it.

Liveness is a heartbeat. A config's data is immutable, but its labels are not: the
Engine's `POST /configs/{id}/update` rewrites the labels of the version it is given
(a stale version is refused: "update out of sequence") and the manager stamps
UpdatedAt. The holder rewrites a `swarm-deploy.heartbeat` label every
`lock.stale_after / 6` seconds from a thread of its own, on a connection of its own.
A lock whose UpdatedAt is `stale_after` old (six heartbeats missed) belongs to a holder
that is gone, wherever it ran (another machine, another PID namespace, a zombie, a
machine asleep): the next command that wants it removes it, by ID (so two of them
cannot remove each other's new lock), and takes it. Every age is the manager's clock
(`/info` SystemTime) minus the manager's stamps (CreatedAt, UpdatedAt): the deployer's
clock never enters, so a deployer 40 minutes ahead sees a 4-second-old lock as 4
seconds old, and a deploy longer than `stale_after` keeps its lock while it beats.

Failure modes, and what they cost:

- The holder cannot reach the manager for `stale_after` (cut network, laptop asleep):
  another command takes the lock over. The holder finds out at its next step, when
  its heartbeat names a config that is gone: it stops there and changes nothing more
  (`LockLostError`); the step that was running when the heartbeats stopped may have
  finished meanwhile.
- The holder hangs but its process lives: its heartbeat goes on and the lock is held;
  stop that process (its lock frees itself `stale_after` later).
- Several managers: UpdatedAt is stamped by the raft leader, SystemTime read from the
  manager the deployer talks to; a skew between managers' clocks adds to or takes from
  an age, so keep them in NTP sync, well within `stale_after`.
- A lock written by a swarm-deploy without heartbeats (no `stale_after` in its
  content) cannot be judged: it is never taken over; `swarm-deploy unlock` frees it.
- Each held lock costs one raft write per heartbeat.
"""

from __future__ import annotations

import os
import secrets
import shlex
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from swarm_deploy import commands, facts, naming
from swarm_deploy.config import Config
from swarm_deploy.engine import ArgvRunner, SwarmApi
from swarm_deploy.errors import LockError, LockLostError, TargetError
from swarm_deploy.gate import Clock
from swarm_deploy.lock_seen import Holder, Seen
from swarm_deploy.naming import label
from swarm_deploy.runner import Reporter

# A holder that missed this many heartbeats in a row is gone.
BEATS = 6
# How often a waiting command looks again, and says again that it waits.
POLL = 2.0
PROGRESS_EVERY = 30.0


def unlock_command(config: Config, target: str, *which: str) -> str:
    """The command that frees a lock whose holder is gone: `which` is `--branch B` or
    `--shared`; `--host` when the target is not the config's."""
    host = ["--host", target] if target != config.target else []
    return shlex.join(["swarm-deploy", "unlock", *which, *host])


@dataclass
class SwarmLock:
    """Acquire with `held()`; the lock is released when the block ends, however it ends.

    `scope` is a branch's slug or `shared`; `subject` names it in messages; `unlock` is
    the command that frees it; `stale_after` is how long without a heartbeat makes this
    holder gone (written into the lock, so waiters judge it by the holder's own word)."""

    executor: ArgvRunner
    swarm: SwarmApi
    app: str
    scope: str
    who: str
    action: str
    subject: str
    unlock: str
    stale_after: float = 30.0
    clock: Clock = field(default_factory=Clock)

    @classmethod
    def of_branch(
        cls,
        executor: ArgvRunner,
        swarm: SwarmApi,
        config: Config,
        branch: str,
        who: str,
        action: str,
        clock: Clock | None = None,
    ) -> SwarmLock:
        """`clock`: what the command waits on, as its gate and jobs do; by default the real one."""
        return cls(
            executor, swarm, config.app, config.names(branch).slug, who, action,
            subject=f"branch {branch}",
            unlock=unlock_command(config, swarm.target, "--branch", branch),
            stale_after=config.lock.stale_after,
            clock=clock or Clock(),
        )  # fmt: skip

    @classmethod
    def of_shared(
        cls,
        executor: ArgvRunner,
        swarm: SwarmApi,
        config: Config,
        who: str,
        action: str,
        clock: Clock | None = None,
    ) -> SwarmLock:
        return cls(
            executor, swarm, config.app, "shared", who, action,
            subject="the shared stack",
            unlock=unlock_command(config, swarm.target, "--shared"),
            stale_after=config.lock.stale_after,
            clock=clock or Clock(),
        )  # fmt: skip

    def shared(self, config: Config) -> SwarmLock:
        """The lock of what every branch shares, taken by the same command."""
        return SwarmLock.of_shared(
            self.executor, self.swarm, config, self.who, self.action, self.clock
        )

    @property
    def name(self) -> str:
        return naming.lock(self.app, self.scope)

    @property
    def interval(self) -> float:
        return self.stale_after / BEATS

    def look(self) -> Seen | None:
        """The lock as it is now; the clock is read first, so an age is never too high."""
        now = self.swarm.now()
        config = facts.config(self.swarm, self.name)
        return None if config is None else Seen.of(config, now)

    @contextmanager
    def held(self, wait: float, reporter: Reporter) -> Iterator[Lease]:
        """Take the lock, waiting at most `wait` seconds for a live holder (a gone one is
        taken over at once); raise LockError naming the holder. The reporter hears every
        lock taken over, and, while it waits, who holds it and how long it has waited."""
        mine = Holder(
            self.who, self.action, socket.gethostname(), os.getpid(), secrets.token_hex(8),
            self.stale_after,
        )  # fmt: skip
        started = self.clock.now()
        told: tuple[str, float] | None = None
        while (config_id := self._create(mine)) is None:
            found = self.look()
            if found is None:
                continue  # released between our two calls: try again
            if found.gone:
                reporter.note(
                    f"took over the lock of {self.subject} from a holder that is gone: "
                    f"{found.describe()}"
                )
                self._remove(found.config_id)
                continue
            waited = self.clock.now() - started
            if waited >= wait:
                raise LockError(self.refusal(found, wait))
            holder = found.holder.token if found.holder else found.config_id
            if told is None or told[0] != holder or waited - told[1] >= PROGRESS_EVERY:
                reporter.note(
                    f"waiting for the lock of {self.subject} ({waited:.0f}s of {wait:g}s): "
                    f"{found.describe()}"
                )
                told = (holder, waited)
            reporter.status(f"waiting for the lock of {self.subject}: {waited:.0f}s of {wait:g}s")
            self.clock.sleep(min(POLL, wait - waited))
        lease = Lease(self, config_id)
        lease.start()
        try:
            yield lease
        finally:
            lease.stop()
            self._remove(config_id)

    def _create(self, holder: Holder) -> str | None:
        """The new lock's ID, or None when the lock exists."""
        argv = commands.docker(
            self.swarm.target, "config", "create",
            "--label", f"{label('lock')}={self.name}",
            "--label", f"{label('app')}={self.app}",
            self.name, "-",
        )  # fmt: skip
        result = self.executor.run(argv, stdin=holder.content(), check=False)
        if result.returncode == 0:
            return result.stdout.strip()
        if "already exists" in result.stderr or "AlreadyExists" in result.stderr:
            return None
        raise LockError(f"could not take the lock {self.name}: {result.stderr.strip()}")

    def _remove(self, config_id: str) -> None:
        """Remove that very lock: by ID, so a lock taken again meanwhile stays."""
        self.executor.run(commands.config_rm(self.swarm.target, config_id), check=False)

    def refusal(self, found: Seen, wait: float) -> str:
        waited = f" after waiting {wait:g}s" if wait else ""
        holder = found.holder
        if holder is None:
            return (
                f"{self.name} exists on the Swarm{waited} but is not a swarm-deploy lock "
                f"({found.describe()}); if nothing else uses that name, free it: "
                f"`{self.unlock}`"
            )
        head = (
            f"another {holder.action} holds the lock of {self.subject}{waited}: {found.describe()}."
        )
        if holder.stale_after is None:
            return (
                f"{head}\nIt was taken by a swarm-deploy that sends no heartbeat, so whether it "
                f"still runs cannot be told. If it is gone, free it with `{self.unlock}`, then "
                "run this again."
            )
        left = max(0.0, holder.stale_after - found.silence)
        return (
            f"{head}\nIt is alive: it refreshes its lock every {holder.stale_after / BEATS:g}s. "
            "Wait for it with --lock-wait SECONDS. If it was stopped (killed, or its machine "
            f"is off), its lock frees itself {holder.stale_after:g}s after its last heartbeat, "
            f"in at most {left:.0f}s: run again with --lock-wait {left + POLL * 2:.0f} or more."
        )


def unlock(lock: SwarmLock) -> str:
    """Free a lock whose holder is gone (or cannot be judged); a live one is refused."""
    found = lock.look()
    if found is None:
        return f"{lock.subject} is not locked ({lock.name} is not on {lock.swarm.target})"
    holder = found.holder
    if found.alive and holder is not None:
        raise LockError(
            f"the lock of {lock.subject} is held by a {holder.action} that is alive: "
            f"{found.describe()}.\nStop it where it runs (Ctrl-C, or cancel its CI job): "
            f"its lock then frees itself {holder.stale_after or 0:g}s after its last heartbeat"
        )
    lock._remove(found.config_id)
    return f"freed the lock of {lock.subject}: {found.describe()}"


class Lease:
    """A lock while it is held: a thread refreshes it every `interval`; `check()` proves
    with a heartbeat of its own that it is still this command's."""

    def __init__(self, lock: SwarmLock, config_id: str) -> None:
        self.lock = lock
        self.config_id = config_id
        self.beats = 0
        self.lost = False
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat of {lock.name}", daemon=True
        )

    def beat(self, swarm: SwarmApi) -> bool:
        """One heartbeat; False once the lock is no longer this command's."""
        with self._mutex:
            if not self.lost:
                self.beats += 1
                labels = {label("heartbeat"): str(self.beats)}
                self.lost = not swarm.relabel_config(self.config_id, labels)
            return not self.lost

    def check(self) -> None:
        """Raise LockLostError when another command took the lock over."""
        if not self.beat(self.lock.swarm):
            lock = self.lock
            raise LockLostError(
                f"the lock of {lock.subject} was taken over by another command while this "
                f"{lock.action} ran: its heartbeats did not reach the Swarm for "
                f"{lock.stale_after:g}s (the machine slept, or the connection to "
                f"{lock.swarm.target} was cut). It stopped here and changes nothing more; "
                "the command that holds the lock now, or the next one, finds what it left"
            )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.lock.interval + 5)

    def _run(self) -> None:
        swarm: SwarmApi | None = None
        try:
            while not self._stop.wait(self.lock.interval):
                try:
                    swarm = swarm or self.lock.swarm.another(max(2, int(self.lock.interval)))
                    if not self.beat(swarm):
                        return
                except TargetError:
                    continue  # a missed beat: the next one may land
        finally:
            if swarm is not None and swarm is not self.lock.swarm:
                swarm.close()
