"""The Dagger module's deployer container: what it is built from, where its files go,
what a call must give it before anything runs, and its entry point.

The container runs `swarm-deploy` against a target it reaches over ssh only. Its entry
(`python -m swarm_deploy.deployer_container REGISTRY swarm-deploy ...`) writes the SSH
key as OpenSSH reads it, logs in to the registry, then runs the command. What it
derives from a secret goes to a tmpfs (PRIVATE_DIR), never to a container layer.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from swarm_deploy import commands, usecases
from swarm_deploy.commands import LOCAL
from swarm_deploy.config import Config
from swarm_deploy.engine import Executor
from swarm_deploy.errors import ConfigError, SecretSourceError, SwarmDeployError
from swarm_deploy.pipeline import Project

# The base is the image the Dagger Python runtime itself starts from, so a mirror of
# Docker Hub needs one Python image; Debian's openssh-client comes from apt; the docker
# CLI is the static binary of the official CLI image (no package manager needed).
BASE_IMAGE = "python:3.11-slim-bookworm"
APT_PACKAGES = ("openssh-client",)
DOCKER_CLI_IMAGE = "docker:28.2.2-cli"
DOCKER_CLI = "/usr/local/bin/docker"
PACKAGE_DIR = "/opt/swarm-deploy"

WORKDIR = "/work"
APP_SECRETS_FILE = "/run/swarm-deploy/app-secrets.env"
SSH_KEY_MOUNT = "/run/swarm-deploy/ssh-key"
KNOWN_HOSTS = "/root/.ssh/known_hosts"
SSH_CONFIG = "/root/.ssh/config"
SSH_AGENT_SOCK = "/run/ssh-agent.sock"
PRIVATE_DIR = "/run/swarm-deploy/private"
SSH_KEY = f"{PRIVATE_DIR}/id_deploy"
DOCKER_CONFIG = f"{PRIVATE_DIR}/docker"
TOKEN_VARIABLE = "SWARM_DEPLOY_REGISTRY_TOKEN"  # noqa: S105 (a variable's name)
USER_VARIABLE = "SWARM_DEPLOY_REGISTRY_USER"
# recorded when a call names nobody: the container itself knows no person or job
UNNAMED_ACTOR = "unknown (dagger call without --actor)"

# ~/.ssh/config of the container: the target's host key is checked, always.
SSH_CLIENT_CONFIG = f"""Host *
    IdentityFile {SSH_KEY}
    UserKnownHostsFile {KNOWN_HOSTS}
    StrictHostKeyChecking yes
    ControlMaster auto
    ControlPath /tmp/ssh-%C
    ControlPersist 60
"""


@dataclass(frozen=True)
class Access:
    """What a call gave the container to reach its target with."""

    ssh_key: bool = False
    ssh_agent: bool = False
    known_hosts: bool = False


def target(config: Config, host: str, access: Access) -> str:
    """The target the container will reach, checked before anything runs: `--host`, or
    the config's `target` when the call gives none, either way over ssh with a key (or an
    agent) and the host key, which is checked, never skipped."""
    resolved = usecases.target(config, host or None)
    where = "--host" if host else "target"
    if resolved == LOCAL:
        raise ConfigError(
            where,
            "'local' means the Docker engine of the machine that runs the command, and "
            "the deployer container has none; give --host ssh://user@host (or target: in "
            "the config), or run `swarm-deploy` on that machine itself",
        )
    needs = []
    if not (access.ssh_key or access.ssh_agent):
        needs.append(
            "a key: --ssh-key file://$HOME/.ssh/id_ed25519 (or --ssh-auth-sock $SSH_AUTH_SOCK)"
        )
    if not access.known_hosts:
        needs.append(
            "its host key: --known-hosts file://$HOME/.ssh/known_hosts (checked, never skipped)"
        )
    if needs:
        raise ConfigError(where, f"{resolved} is reached over ssh, which needs {'; '.join(needs)}")
    return resolved


def check_registry_auth(registry_user: str, has_token: bool) -> None:
    """A registry token goes with the user it belongs to."""
    if has_token and not registry_user:
        raise ConfigError(
            "--registry-user",
            "is empty, but --registry-token is given: name the token's user, e.g. the "
            "GitHub owner for ghcr.io",
        )


def check_app_secrets(config: Config, environ: Mapping[str, str]) -> None:
    """Every `env:` source of the config's secrets is in --app-secrets (`file:` sources
    are read inside the container, from the source directory)."""
    problems = []
    for name, source in config.secrets.items():
        if source.env is None:
            continue
        if source.env not in environ:
            problems.append(f"  - secret '{name}': {source.env} is not in it")
            continue
        try:
            source.read(environ)
        except SecretSourceError as exc:
            problems.append(f"  - {exc}")
    if problems:
        lines = "\n".join(problems)
        raise SecretSourceError(
            f"--app-secrets: {len(problems)} secret(s) cannot be read, so nothing was "
            f"published or changed:\n{lines}\nadd a line VARIABLE=value for each, or change "
            "secrets: in the config"
        )


def check_deploy(
    project: Project,
    branch: str,
    release: str | None,
    *,
    host: str,
    access: Access,
    registry_user: str,
    has_token: bool,
    environ: Mapping[str, str],
) -> str:
    """What a deploy (`release`) or a rollback (None) is given, checked before anything is
    built, published or run; returns the target."""
    resolved = target(project.config, host, access)
    check_registry_auth(registry_user, has_token)
    check_app_secrets(project.config, environ)
    if release is None:
        project.config.branch(branch)
    else:
        usecases.plan(usecases.PlanRequest(project, branch, release, resolved, environ))
    return resolved


def argv(*, config_path: str, target: str, registry: str, args: Sequence[str]) -> list[str]:
    """What the container runs: its entry, then `swarm-deploy ARGS --config --host`."""
    return [
        "python", "-m", __name__, registry,
        "swarm-deploy", *args, "--config", config_path, "--host", target,
    ]  # fmt: skip


_ARMOR = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


def openssh_key(data: bytes) -> bytes:
    """A private key as OpenSSH reads it. OpenSSH refuses ("error in libcrypto") a key
    whose last line has no newline, whose lines end in CR (a Windows clipboard), that
    starts with a blank line or whose lines end in spaces; a key flattened to one line
    is refused too. The armored block is rewritten: its lines stripped, a base64 body
    without headers re-wrapped as ssh-keygen writes it, one newline at the end."""
    found = _ARMOR.search(data)
    if found is None:
        return data  # not a key OpenSSH could read in any form: ssh says why
    label, body = found.group(1), found.group(2)
    lines = [line.strip() for line in body.replace(b"\r", b"\n").split(b"\n")]
    if any(b":" in line for line in lines):
        body_lines = _trim_blank(lines)  # PEM headers, and the blank line after them, stay
    else:
        flat = b"".join(b"".join(line.split()) for line in lines)
        width = 70 if label == b"OPENSSH PRIVATE KEY" else 64  # as ssh-keygen writes them
        body_lines = [flat[i : i + width] for i in range(0, len(flat), width)]
    return b"\n".join(
        [b"-----BEGIN " + label + b"-----", *body_lines, b"-----END " + label + b"-----", b""]
    )


def _trim_blank(lines: list[bytes]) -> list[bytes]:
    while lines and not lines[0]:
        lines = lines[1:]
    while lines and not lines[-1]:
        lines = lines[:-1]
    return lines


def write_private(path: Path, data: bytes) -> None:
    """A file only its owner reads (OpenSSH refuses a key others can read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def prepare(
    registry: str,
    environ: Mapping[str, str],
    executor: Executor,
    key_mount: Path = Path(SSH_KEY_MOUNT),
    key: Path = Path(SSH_KEY),
) -> None:
    """Before swarm-deploy runs: the key as OpenSSH reads it, and the registry login whose
    credentials `docker stack deploy --with-registry-auth` forwards to the Swarm."""
    if key_mount.exists():
        write_private(key, openssh_key(key_mount.read_bytes()))
    token = environ.get(TOKEN_VARIABLE)
    if token:
        executor.run(commands.login(registry, environ.get(USER_VARIABLE, "")), stdin=token.encode())


def main(args: Sequence[str] | None = None) -> None:
    """`python -m swarm_deploy.deployer_container REGISTRY COMMAND...`"""
    registry, *command = sys.argv[1:] if args is None else args
    try:
        prepare(registry, os.environ, Executor(Path.cwd()))
    except SwarmDeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    # the command takes this process over: its output streams, its exit code is the call's
    os.execvp(command[0], command)  # noqa: S606


if __name__ == "__main__":
    main()
