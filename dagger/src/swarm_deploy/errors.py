"""Every error swarm-deploy raises on purpose.

    SwarmDeployError                 base: the CLI prints "error: ..." and exits 2
    ├── ConfigError                  swarm-deploy.yml is unreadable or invalid
    │   └── ConfigErrors             several mistakes in it, all found in one reading
    ├── BranchError                  a branch name cannot be deployed
    │   ├── BranchNameError          empty, or nothing usable in it
    │   ├── BranchNotAllowedError    no branch rule matches it
    │   └── HostConflictError        its host belongs to another branch or the shared stack
    ├── SecretSourceError            a secret's env var or file is missing
    │   └── SecretValueError         it is there, but Swarm cannot take its value
    ├── SharedStackError             this deploy may not change the shared stack as it would
    ├── RenderError                  a template failed to render
    ├── LockError                    another command holds a lock this one needs
    │   └── LockLostError            a lock was taken over while this command held it
    ├── TargetError                  the target's engine cannot be reached or used
    │   └── CommandError             a docker command exited non-zero
    └── CommandFailedError           a command failed: "<command> failed: ...", exit 1
        ├── DeployError              a deploy stopped; the live colour is untouched
        │   ├── ConvergeError        a service did not converge (failed task, rollback)
        │   ├── GateError            the new colour failed its health gate
        │   ├── JobError             a one-shot job failed; its last log lines with it
        │   └── RollbackError        a rollback stopped, or has no release to go back to
        ├── DestroyError             a destroy stopped; what it removed stays removed
        └── UnlockError              unlock refused: the lock's holder is alive (exit 2)

Each message says what is wrong, the value observed, and what to do next. A step's
error (a JobError of a data job, say) is raised as the failure of the command that ran
the step (`named`): a destroy whose job fails says "destroy failed", not "deploy".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar


class SwarmDeployError(Exception):
    """Base of every error swarm-deploy raises on purpose."""


class ConfigError(SwarmDeployError):
    """swarm-deploy.yml is unreadable or invalid; `path` is the key path."""

    def __init__(self, path: str, message: str, at: str | None = None) -> None:
        self.path = path
        self.message = message
        # the key path of the mistake, also when the message names it itself
        self.at = path if at is None else at
        super().__init__(f"{path}: {message}" if path else message)


class ConfigErrors(ConfigError):
    """Every mistake found in one reading of the config, in order, as a compiler shows them."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = tuple(errors)
        super().__init__("", "\n".join(str(error) for error in errors))


class BranchError(SwarmDeployError):
    """A branch name cannot be deployed."""


class BranchNameError(BranchError):
    """The branch name is empty or has nothing usable in a name."""


class BranchNotAllowedError(BranchError):
    """No branch rule of the config matches the branch."""


class HostConflictError(BranchError):
    """The host the branch would get is another branch's, or the shared stack's."""


class SharedStackError(SwarmDeployError):
    """The deploy would change the shared stack, which this branch may not do, or would
    remove a shared service another branch still uses."""


class SecretSourceError(SwarmDeployError):
    """A secret's source (environment variable or file) cannot be read."""


class SecretValueError(SecretSourceError):
    """A secret's source is there, but its value is empty, only whitespace or too large;
    `reason` says which, never the value."""

    def __init__(self, message: str, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class RenderError(SwarmDeployError):
    """A template failed to render or rendered something invalid."""


class LockError(SwarmDeployError):
    """Another command holds a lock this one needs; the message says who, since when."""


class LockLostError(LockError):
    """Another command took over a lock this one held (its heartbeats stopped reaching
    the Swarm): this one stops where it is and changes nothing more."""


class TargetError(SwarmDeployError):
    """The target's Docker engine cannot be reached or refused a request."""


class CommandError(TargetError):
    """A docker command exited non-zero; the message carries its argv and stderr."""

    def __init__(self, shown: str, returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        tail = "\n".join(stderr.strip().splitlines()[-8:]) or "(no output)"
        super().__init__(f"`{shown}` exited {returncode}:\n{tail}")


class CommandFailedError(SwarmDeployError):
    """A command failed; `command` names it in the CLI's message, `exit_code` is its exit."""

    command: ClassVar[str] = "command"
    exit_code: ClassVar[int] = 1


class DeployError(CommandFailedError):
    """A deploy stopped before the switch; what was live before stays live."""

    command = "deploy"


class ConvergeError(DeployError):
    """A service did not converge: a task failed or was rejected, or an update rolled back."""


class GateError(DeployError):
    """The new colour did not pass its health gate."""


class JobError(DeployError):
    """A one-shot job failed or did not finish: `failure` says how, `logs` is its output."""

    def __init__(self, job: str, failure: str, logs: str) -> None:
        self.job = job
        self.failure = failure
        self.logs = logs
        super().__init__(f"job {job} failed: {failure}\n{logs}")


class RollbackError(DeployError):
    """A rollback stopped (as a deploy of the release before does), or no release before
    the live one is recorded to go back to."""

    command = "rollback"


class DestroyError(CommandFailedError):
    """A destroy stopped at a step; what it removed stays removed, and running it again
    removes the rest."""

    command = "destroy"


class UnlockError(CommandFailedError):
    """Unlock refused to free a lock whose holder is alive; nothing was changed."""

    command = "unlock"
    exit_code = 2


@contextmanager
def named(
    kind: type[CommandFailedError], caught: type[SwarmDeployError] = CommandFailedError
) -> Iterator[None]:
    """A `caught` error raised inside, as the failure of the command `kind` names (the
    step's own error is its __cause__); one of `kind` already passes as it is."""
    try:
        yield
    except caught as exc:
        if isinstance(exc, kind):
            raise
        raise kind(str(exc)) from exc
