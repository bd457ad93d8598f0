"""The entry points the CLI and the Dagger module share: one way to plan, render, deploy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from swarm_deploy import claims, stack_secrets
from swarm_deploy import config as config_module
from swarm_deploy.config import Branch, Config
from swarm_deploy.errors import ConfigError
from swarm_deploy.plan import Facts, Plan, Request, deploy_plan
from swarm_deploy.render import BranchFiles, Release, Renderer, load_templates

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Project:
    """A config and the templates next to it."""

    config: Config
    templates: Mapping[str, str]

    @classmethod
    def load(cls, config_path: Path | str) -> Project:
        cfg = config_module.load(config_path)
        return cls(cfg, load_templates(cfg.root))

    @cached_property
    def renderer(self) -> Renderer:
        """One Jinja environment per project: each template is parsed once."""
        return Renderer(self.templates)

    def render(
        self,
        branch: Branch,
        release: Release,
        secrets: stack_secrets.BranchSecrets,
        live_colour: str | None,
        state: Mapping[str, str] | None = None,
    ) -> BranchFiles:
        return self.renderer.branch_files(self.config, branch, release, secrets, live_colour, state)


def release(config: Config, version: str) -> Release:
    """The release a version names: every image tagged with it."""
    if _TAG.fullmatch(version) is None:
        raise ConfigError(
            "--release",
            f"should be usable as an image tag (letters, digits, '_', '.', '-'), got {version!r}",
        )
    return Release.tagged(config, version)


def plan(
    project: Project,
    branch_name: str,
    version: str,
    *,
    target: str | None = None,
    environ: Mapping[str, str] | None = None,
    facts: Facts = Facts(),
    source_url: str | None = None,
    transfer: bool = False,
    force: bool = False,
    deployed_by: str = "",
    deployed_at: str = "",
    prebuilt: Release | None = None,
    update_shared: bool = False,
) -> Plan:
    """The deploy of `version`, or with `prebuilt` the redeploy of images already pushed.

    With facts read from the target, a branch that may not claim its host or change the
    shared stack as it would is refused here, before any step (see claims)."""
    cfg = project.config
    branch = cfg.branch(branch_name)
    secrets = stack_secrets.resolve(cfg, branch, environ)
    request = Request(
        target=cfg.target_for(target),
        release=prebuilt or release(cfg, version),
        prebuilt=prebuilt is not None,
        source_url=source_url,
        transfer=transfer,
        force=force,
        deployed_by=deployed_by,
        deployed_at=deployed_at,
        update_shared=update_shared,
    )
    rendered = project.render(branch, request.release, secrets, None)
    in_use = rendered.config_names | {s.swarm_name for s in secrets.all()}
    changes: list[str] = []
    if facts.read:
        claims.check_host(branch, facts.others, request.target)
        changes = claims.check_shared(
            cfg, branch, rendered.shared_definitions, facts.shared_stack, facts.others,
            update_shared, {key: s.swarm_name for key, s in secrets.shared.items()},
        )  # fmt: skip
    return deploy_plan(
        cfg,
        branch,
        secrets,
        request,
        facts=facts,
        edge_hash=rendered.edge_hash,
        in_use=in_use,
        shared_changes=tuple(changes),
    )


def render(
    project: Project,
    branch_name: str,
    version: str,
    *,
    environ: Mapping[str, str] | None = None,
    live_colour: str = "blue",
) -> tuple[dict[str, str], list[str]]:
    """The branch's files, and a warning for each secret whose value could not be read."""
    branch = project.config.branch(branch_name)
    secrets = stack_secrets.resolve(project.config, branch, environ)
    rendered = project.render(branch, release(project.config, version), secrets, live_colour)
    return rendered.files, list(secrets.warnings())
