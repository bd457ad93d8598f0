"""Signals and the test suite's fault points: how a deploy is stopped from outside.

INT, TERM and HUP (Ctrl-C, a cancelled CI job, `docker stop`, a closed terminal) raise
`Interrupted` in the main thread: the deploy then finishes or undoes the irreversible
step in progress, releases its locks and says what state the branch is in. A second
signal while it does so raises `Aborted`, the only way to cut that short.

A fault point makes the process signal itself at a named place, for the tests that stop
a deploy everywhere (tests/unit/test_interrupts.py, tests/engine/test_interrupts.py).
Inert unless the environment names a point:

    SWARM_DEPLOY_FAULT=after:colour:KILL     SIGKILL once step 'colour' has finished
    SWARM_DEPLOY_FAULT=switch:running:TERM   SIGTERM while the switch runs in nginx

Points: `before:<phase>` and `after:<phase>` around every step of a deploy (the first
step of that phase), `switch:running` (the switch's one command in an nginx task about
to start, signals held until it ends) and `switch:verified` (it switched and verified
that task, the next not started). Each fires at most once.

A block can hold signals (`held`): one command whose outcome the deployer must see, not
guess (the switch in nginx, which goes on in the container whatever happens to the
deployer). A first signal then stops the deploy when the block ends.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

FAULT_ENV = "SWARM_DEPLOY_FAULT"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A first INT, TERM or HUP: stop after finishing or undoing the step in progress."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Aborted(BaseException):
    """A second signal during that clean-up; the message says what it leaves."""


@contextmanager
def as_exceptions() -> Iterator[None]:
    """While the block runs, the first signal raises Interrupted (`receive`), any later
    one Aborted."""
    received: list[str] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        received.append(name)
        if len(received) == 1:
            receive(name)
            return
        raise Aborted(f"{name} after {received[0]}: the clean-up was cut short")

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# while a `held` block runs: the first signal it holds, once one came
_holding: list[str | None] = []


def receive(name: str) -> None:
    """A first signal: raised as Interrupted now, or when the `held` block running ends."""
    if not _holding:
        raise Interrupted(name)
    if _holding[-1] is None:
        _holding[-1] = name


@contextmanager
def held() -> Iterator[None]:
    """While the block runs, a first signal waits; it is raised as Interrupted once the
    block ends (unless the block raised). A second signal is not held (Aborted)."""
    _holding.append(None)
    try:
        yield
    finally:
        name = _holding.pop()
    if name is not None:
        raise Interrupted(name)


def _signal_self(name: str) -> None:
    os.kill(os.getpid(), getattr(signal, f"SIG{name}"))


# What a fault point does when it fires; the fast tests replace it (a SIGKILL cannot be
# survived in-process).
fire: Callable[[str], None] = _signal_self
_fired: set[str] = set()


def point(name: str) -> None:
    """Signal this process when SWARM_DEPLOY_FAULT names this point (once)."""
    spec = os.environ.get(FAULT_ENV, "")
    where, _, signal_name = spec.rpartition(":")
    if where == name and spec not in _fired:
        _fired.add(spec)
        fire(signal_name)
