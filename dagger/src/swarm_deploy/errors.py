"""Every error swarm-deploy raises on purpose.

    SwarmDeployError                 base: the CLI prints it and exits 2
    ├── ConfigError                  swarm-deploy.yml is unreadable or invalid
    ├── BranchError                  a branch name cannot be deployed
    │   ├── BranchNameError          empty, or nothing usable in it
    │   └── BranchNotAllowedError    no branch rule matches it
    ├── SecretSourceError            a secret's env var or file is missing
    └── RenderError                  a template failed to render

Each message says what is wrong, the value observed, and what to do next.
"""

from __future__ import annotations


class SwarmDeployError(Exception):
    """Base of every error swarm-deploy raises on purpose."""


class ConfigError(SwarmDeployError):
    """swarm-deploy.yml is unreadable or invalid; `path` is the key path."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class BranchError(SwarmDeployError):
    """A branch name cannot be deployed."""


class BranchNameError(BranchError):
    """The branch name is empty or has nothing usable in a name."""


class BranchNotAllowedError(BranchError):
    """No branch rule of the config matches the branch."""


class SecretSourceError(SwarmDeployError):
    """A secret's source (environment variable or file) cannot be read."""


class RenderError(SwarmDeployError):
    """A template failed to render or rendered something invalid."""
