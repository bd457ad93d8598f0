"""Holds a lock with the package's own code until stdin closes: `lock_holder.py CONFIG
SCOPE`, SCOPE a branch or `shared`. Prints `held <pid>` once it holds it."""

from __future__ import annotations

import os
import sys

from swarm_deploy import config
from swarm_deploy.engine import Executor, Swarm
from swarm_deploy.lock import SwarmLock
from swarm_deploy.plan import Step


class Quiet:
    def begin(self, number: int, total: int, step: Step) -> None: ...

    def end(self, step: Step, seconds: float, ok: bool) -> None: ...

    def skipped(self, number: int, total: int, step: Step) -> None: ...

    def status(self, text: str) -> None: ...

    def note(self, text: str) -> None: ...


def main(config_path: str, scope: str) -> None:
    cfg = config.load(config_path)
    swarm = Swarm(cfg.target)
    executor = Executor(cfg.root)
    action = f"deploy of {scope} by a test"
    lock = (
        SwarmLock.of_shared(executor, swarm, cfg, "a test", action)
        if scope == "shared"
        else SwarmLock.of_branch(executor, swarm, cfg, scope, "a test", action)
    )
    with lock.held(0, Quiet()):
        print("held", os.getpid(), flush=True)
        sys.stdin.read()
    swarm.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
