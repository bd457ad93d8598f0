"""Every error swarm-deploy raises on purpose.

    SwarmDeployError                 base: the CLI prints it and exits 2
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
    └── DeployError                  a deploy stopped; the live colour is untouched
        ├── ConvergeError            a service did not converge (failed task, rollback)
        ├── GateError                the new colour failed its health gate
        └── JobError                 a one-shot job failed; its last log lines with it

Each message says what is wrong, the value observed, and what to do next.
"""

from __future__ import annotations


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


class DeployError(SwarmDeployError):
    """A deploy stopped before the switch; what was live before stays live."""


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
