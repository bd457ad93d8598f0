"""One deploy per branch at a time, held on the Swarm itself.

A lock is a Swarm config named `<app>_<scope>_lock`: creating a config whose name
exists fails, atomically, on the managers' raft store, so two deployers on two machines
cannot both hold it. Its content says who holds it and since when. Each branch has its
own lock (the scope is its slug), held for the whole deploy, so different branches
deploy concurrently. What they share (the `shared` scope: shared secrets, the shared
stack and its configs) has one more lock, held only while a deploy changes it: two
`docker stack deploy` of one stack at once fail with "update out of sequence".
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from swarm_deploy import commands
from swarm_deploy.engine import Executor, Swarm
from swarm_deploy.errors import LockError
from swarm_deploy.gate import Clock, parse_time
from swarm_deploy.naming import LABEL


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: shown to whoever waits for it."""

    who: str
    host: str
    pid: int
    started_at: str
    action: str
    token: str

    def describe(self, now: datetime) -> str:
        return (
            f"{self.who} ({self.action}, pid {self.pid} on {self.host}) since "
            f"{self.started_at}, {self.age(now):.0f}s ago"
        )

    def age(self, now: datetime) -> float:
        return (now - parse_time(self.started_at)).total_seconds()


def lock_name(app: str, scope: str) -> str:
    return f"{app}_{scope}_lock"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class SwarmLock:
    """Acquire with `held()`; the lock is released when the block ends, however it ends.

    `scope` is a branch's slug or `shared`; `subject` names it in messages."""

    executor: Executor
    swarm: Swarm
    app: str
    scope: str
    who: str
    action: str
    subject: str = "this branch"
    clock: Clock = Clock()

    @property
    def name(self) -> str:
        return lock_name(self.app, self.scope)

    def holder(self) -> Holder | None:
        config = self.swarm.config(self.name)
        if config is None:
            return None
        try:
            return Holder(**json.loads(base64.b64decode(config["Spec"]["Data"])))
        except (ValueError, TypeError):
            raise LockError(
                f"{self.name} exists on the Swarm but is not a swarm-deploy lock; remove it "
                f"(`docker config rm {self.name}`) if nothing else uses that name"
            ) from None

    @contextmanager
    def held(
        self,
        wait: float = 0.0,
        stale_after: float = 1800.0,
        break_stale: bool = False,
        on_wait: Callable[[str], None] = lambda _: None,
    ) -> Iterator[list[str]]:
        """Yields notes (a lock broken on the way); raises LockError with the holder.

        While it waits, `on_wait` hears who holds the lock."""
        notes: list[str] = []
        mine = Holder(
            who=self.who,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            action=self.action,
            token=secrets.token_hex(8),
        )
        deadline = self.clock.now() + wait
        while not self._create(mine):
            holder = self.holder()
            if holder is None:
                continue  # released between our two calls: try again
            now = datetime.now(UTC)
            if holder.host == mine.host and not pid_alive(holder.pid):
                notes.append(f"broke the lock of a deploy that is gone: {holder.describe(now)}")
                self._remove()
                continue
            if break_stale and holder.age(now) >= stale_after:
                notes.append(f"broke a stale lock: {holder.describe(now)}")
                self._remove()
                continue
            if self.clock.now() >= deadline:
                raise LockError(self._refusal(holder, now, wait, stale_after))
            on_wait(f"waiting for the lock of {self.subject}: {holder.describe(now)}")
            self.clock.sleep(2.0)
        try:
            yield notes
        finally:
            current = self.holder()
            if current is not None and current.token == mine.token:
                self._remove()

    def _create(self, holder: Holder) -> bool:
        argv = commands.docker(
            self.swarm.target, "config", "create",
            "--label", f"{LABEL}.lock={self.name}",
            "--label", f"{LABEL}.app={self.app}",
            self.name, "-",
        )  # fmt: skip
        data = json.dumps(holder.__dict__).encode()
        result = self.executor.run(argv, stdin=data, check=False)
        if result.returncode == 0:
            return True
        if "already exists" in result.stderr or "AlreadyExists" in result.stderr:
            return False
        raise LockError(f"could not take the lock {self.name}: {result.stderr.strip()}")

    def _remove(self) -> None:
        self.executor.run(commands.config_rm(self.swarm.target, self.name), check=False)

    def _refusal(self, holder: Holder, now: datetime, wait: float, stale_after: float) -> str:
        waited = f" after waiting {wait:g}s" if wait else ""
        breakable = (
            "it is older than the lock limit, so `--break-lock` may remove it"
            if holder.age(now) >= stale_after
            else f"`--break-lock` may remove it once it is older than {stale_after:g}s"
        )
        return (
            f"another {holder.action} holds the lock of {self.subject}{waited}: "
            f"{holder.describe(now)}.\n"
            f"Wait for it (--lock-wait SECONDS), or, if it is dead, {breakable}."
        )
