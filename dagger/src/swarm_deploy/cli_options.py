"""The options several `swarm-deploy` commands share, and what their defaults resolve to."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from swarm_deploy.errors import ConfigError
from swarm_deploy.secrets import parse_env
from swarm_deploy.usecases import LOCK_WAIT

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default="swarm-deploy.yml",
        envvar="SWARM_DEPLOY_CONFIG",
        show_default=True,
        help="The pipeline's config; relative paths in it are relative to its directory.",
    )(func)


def branch_option(func: F) -> F:
    return click.option(
        "--branch",
        "-b",
        required=True,
        help="The git branch to act on, e.g. develop or feature/login.",
    )(func)


def release_option(func: F) -> F:
    return click.option(
        "--release",
        "version",
        default=None,
        help="Image tag of this release. Default: the git commit of the config's directory "
        "(12 hex) when it holds everything the builds read; otherwise it ends in a hash of "
        "the build contexts: <commit>-dirty-<hash>, or dev-<hash> outside git.",
    )(func)


def lock_options(func: F) -> F:
    return click.option(
        "--lock-wait",
        type=click.FloatRange(min=0),
        default=LOCK_WAIT,
        show_default=True,
        metavar="SECONDS",
        help="The longest to wait for each lock another command holds: the branch's (another "
        "deploy, rollback or destroy of it) and the shared stack's (another branch changing "
        "what they share); 0 refuses at once. A lock whose holder stopped sending "
        "heartbeats (lock.stale_after, default 30s) is taken over without waiting.",
    )(func)


def update_shared_option(func: F) -> F:
    return click.option(
        "--update-shared",
        is_flag=True,
        help="Let this deploy change the shared stack (databases, Traefik, logging) for every "
        "branch, although its branch rule does not say shared: true. A shared service "
        "another branch still uses is never removed.",
    )(func)


def actor_option(func: F) -> F:
    return click.option(
        "--actor",
        default=None,
        metavar="WHO",
        help="Who runs this, as recorded on the Swarm (the deployed-by label, the lock's "
        "holder). Default: in GitHub Actions $GITHUB_ACTOR and the run's URL, else user@host.",
    )(func)


def secrets_env_file_option(func: F) -> F:
    return click.option(
        "--secrets-env-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="A file of KEY=VALUE lines that the config's `env:` secret sources may read, "
        "besides the environment (the Dagger module mounts it as a secret).",
    )(func)


def host_option(func: F) -> F:
    return click.option(
        "--host",
        "target",
        default=None,
        help="Where to deploy: local or ssh://user@host[:port]. Default: target in the config.",
    )(func)


def environment(secrets_env_file: Path | None) -> dict[str, str]:
    """What `env:` secret sources read: the environment, and the --secrets-env-file."""
    environ = dict(os.environ)
    if secrets_env_file is not None:
        environ |= read_env_file(secrets_env_file)
    return environ


def read_env_file(path: Path, option: str = "--secrets-env-file") -> dict[str, str]:
    """KEY=VALUE lines (`secrets.parse_env`); values are never shown."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(option, f"cannot read {path} ({exc.strerror})") from None
    return parse_env(text, str(path))


def deployer_name() -> str:
    """Who deploys, for the record: the GitHub actor and the run's URL in Actions, else
    user@host."""
    if actor := os.environ.get("GITHUB_ACTOR"):
        return f"{actor} ({github_run_url(os.environ) or 'github actions'})"
    return f"{getpass.getuser()}@{socket.gethostname()}"


def github_run_url(environ: Mapping[str, str]) -> str | None:
    """The URL of the GitHub Actions run, from the variables every job has."""
    parts = [environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if not all(parts):
        return None
    server, repository, run_id = parts
    return f"{server}/{repository}/actions/runs/{run_id}"
