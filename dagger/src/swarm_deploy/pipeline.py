"""The entry points the CLI and the Dagger module share: one way to plan and render."""

from __future__ import annotations

import re
from collections.abc import Mapping

from swarm_deploy import stack_secrets
from swarm_deploy.config import Config
from swarm_deploy.errors import ConfigError
from swarm_deploy.plan import Facts, Plan, deploy_plan
from swarm_deploy.render import Release, Renderer

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def release(config: Config, version: str) -> Release:
    """The release a version names: every image tagged with it."""
    if _TAG.fullmatch(version) is None:
        raise ConfigError(
            "--release",
            f"should be usable as an image tag (letters, digits, '_', '.', '-'), got {version!r}",
        )
    return Release.tagged(config, version)


def plan(
    config: Config,
    branch_name: str,
    version: str,
    *,
    target: str | None = None,
    environ: Mapping[str, str] | None = None,
    facts: Facts = Facts(),
    source_url: str | None = None,
) -> Plan:
    branch = config.branch(branch_name)
    return deploy_plan(
        config,
        branch,
        release(config, version),
        stack_secrets.resolve(config, branch, environ),
        target=target or config.target,
        facts=facts,
        source_url=source_url,
    )


def render(
    config: Config,
    templates: Mapping[str, str],
    branch_name: str,
    version: str,
    *,
    environ: Mapping[str, str] | None = None,
    live_colour: str = "blue",
) -> tuple[dict[str, str], list[str]]:
    """The branch's files, and a warning for each secret whose value could not be read."""
    branch = config.branch(branch_name)
    secrets = stack_secrets.resolve(config, branch, environ)
    files = Renderer(templates).branch_files(
        config, branch, release(config, version), secrets, live_colour
    )
    return files, list(secrets.warnings())
