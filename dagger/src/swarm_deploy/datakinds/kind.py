"""What a data kind is: one shared data service each branch gets its own part of.

A kind says on which port its relay forwards it, how a colour service is wired to it
(environment), which per-branch credential is derived from its admin secret, and which
scripts make (deploy) and remove (destroy --drop-data) a branch's part of it. The
scripts ship as package data (datakinds/scripts/), run by a one-shot job in the
service's own image.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files

from swarm_deploy.naming import BranchNames

# How a colour service reaches a kind: (branch names, the relay's host, the kind's
# databases of the config) -> environment variables.
Environment = Callable[[BranchNames, str, Sequence[str]], dict[str, str]]


def script(name: str) -> str:
    """A script shipped in the package, under datakinds/scripts/."""
    return files(__package__).joinpath("scripts", name).read_text(encoding="utf-8")


def role_and_databases(names: BranchNames, databases: Sequence[str]) -> list[str]:
    """A job's arguments for a kind with databases: the branch's role, then each database."""
    return [names.role, *(names.database(db) for db in databases)]


@dataclass(frozen=True)
class DataKind:
    """One data kind; its module (postgres.py, ...) makes the one instance, `KIND`.

    `host_env` names the job's variable holding the shared service's host; `admin_key`
    and `branch_key` are where the admin's and the branch's (derived) passwords are
    mounted, /run/secrets/<key>; `job` ends the job's name; the titles name the plan's
    steps ({role}, {databases}, {prefix}, {slug} filled in)."""

    name: str
    port: int
    environment: Environment
    host_env: str
    admin_key: str
    branch_key: str
    job: str
    ensure: str
    drop: str
    ensure_title: str
    drop_title: str
    note: str
    # whether the config lists databases of it (shared/<kind>/databases)
    has_databases: bool = True
    job_args: Callable[[BranchNames, Sequence[str]], list[str]] = role_and_databases
    # the job runs `sh -c SHELL SCRIPT ARGS...`; None: the script itself is the shell script
    shell: str | None = None

    def command(self, script: str, args: Sequence[str]) -> list[str]:
        """The job's command: `script` (ensure or drop) with the branch's arguments."""
        if self.shell is None:
            return ["sh", "-c", script, f"{self.name}-job", *args]
        return ["sh", "-c", self.shell, script, *args]

    def title(self, template: str, names: BranchNames, databases: Sequence[str]) -> str:
        return template.format(
            role=names.role,
            databases=", ".join(names.database(db) for db in databases),
            prefix=names.redis_prefix,
            slug=names.slug,
        )

    @staticmethod
    def derive(admin_password: bytes, role: str) -> bytes:
        """The branch's password: every deployer computes the same one, none is stored."""
        return hmac.new(admin_password, role.encode(), hashlib.sha256).hexdigest()[:40].encode()
