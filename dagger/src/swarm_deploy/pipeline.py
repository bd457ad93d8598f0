"""What the use cases build on: the project, a resolved branch (Subject), and one way
to plan and render it. The commands themselves are in usecases.py."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from swarm_deploy import claims, commands, stack_secrets, template_files
from swarm_deploy import config as config_module
from swarm_deploy.config import Branch, Config
from swarm_deploy.engine import Executor
from swarm_deploy.errors import ConfigError, RenderError
from swarm_deploy.plan import Facts, Plan, Request, deploy_fingerprint, deploy_plan
from swarm_deploy.render import NGINX_CONF, BranchFiles, Release, Renderer, fix

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class Project:
    """A config and its templates: each packaged one, or the file next to the config that
    overrides it (`overrides`: path -> that file's text)."""

    config: Config
    templates: Mapping[str, str]
    overrides: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, config_path: Path | str) -> Project:
        cfg = config_module.load(config_path)
        return cls.of(cfg, template_files.load(cfg.root))

    @classmethod
    def of(cls, cfg: Config, templates: template_files.Templates) -> Project:
        return cls(cfg, templates.texts, templates.overrides)

    @cached_property
    def renderer(self) -> Renderer:
        """One Jinja environment per project: each template is parsed once."""
        return Renderer(self.templates, self.overrides)

    def render(
        self,
        branch: Branch,
        release: Release,
        secrets: stack_secrets.BranchSecrets,
        live_colour: str | None,
        state: Mapping[str, str] | None = None,
    ) -> BranchFiles:
        return self.renderer.branch_files(self.config, branch, release, secrets, live_colour, state)


@dataclass(frozen=True)
class Subject:
    """A branch of a project (its rule), the target it goes to and its secrets' values:
    what a command resolves once (usecases.subject) and hands down whole."""

    project: Project
    branch: Branch
    target: str
    secrets: stack_secrets.BranchSecrets


def release(config: Config, version: str) -> Release:
    """The release a version names: every image tagged with it."""
    if _TAG.fullmatch(version) is None:
        raise ConfigError(
            "--release",
            f"should be usable as an image tag (letters, digits, '_', '.', '-'), got {version!r}",
        )
    return Release.tagged(config, version)


def plan(subject: Subject, request: Request, facts: Facts = Facts()) -> Plan:
    """The deploy the request asks for, of the subject's branch on its target.

    With facts read from the target, a branch that may not claim its host or change the
    shared stack as it would is refused here, before any step (see claims)."""
    cfg = subject.project.config
    branch, secrets = subject.branch, subject.secrets
    rendered = subject.project.render(branch, request.release, secrets, None)
    in_use = rendered.config_names | {s.swarm_name for s in secrets.all()}
    changes: list[str] = []
    if facts.read:
        claims.check_host(branch, facts.others, request.target)
        changes = claims.check_shared(
            cfg, branch, rendered.shared_definitions, facts.shared_stack, facts.others,
            request.update_shared, {key: s.swarm_name for key, s in secrets.shared.items()},
        )  # fmt: skip
    return deploy_plan(
        cfg,
        branch,
        secrets,
        request,
        facts=facts,
        edge_hash=rendered.edge_hash,
        nginx_config=rendered.nginx_config,
        in_use=in_use,
        shared_changes=tuple(changes),
        shared_definitions=rendered.shared_definitions,
        fingerprint=deploy_fingerprint(rendered.files, request),
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
    secrets.require_usable()
    rendered = project.render(branch, release(project.config, version), secrets, live_colour)
    return rendered.files, list(secrets.warnings())


def sample_branches(config: Config) -> list[str]:
    """One branch of each branch rule, each `*` standing for `x`: what `check` renders."""
    return list(dict.fromkeys(rule.match.replace("*", "x") for rule in config.branches))


def check(project: Project) -> dict[str, dict[str, str]]:
    """Every template rendered for one branch of each rule, offline and without secret
    values: a template error surfaces here, not in a deploy."""
    return {
        name: render(project, name, "check", environ={})[0]
        for name in sample_branches(project.config)
    }


def nginx_test_locally(
    executor: Executor, rendered: Mapping[str, Mapping[str, str]], overridden: Collection[str]
) -> str:
    """`nginx -t` of this machine on each branch's rendered nginx.conf; returns nginx's
    version. Only what nginx parses counts: opening its pid file, logs or temp paths as
    this user concerns this machine, not the edge (the deploy tests there, in its image)."""
    version = executor.run(commands.nginx_version()).stderr.strip().rpartition(" ")[2]
    with tempfile.TemporaryDirectory(prefix="swarm-deploy-check-") as workdir:
        conf = Path(workdir) / "nginx.conf"
        for branch, files in rendered.items():
            conf.write_text(files[NGINX_CONF])
            result = executor.run(commands.nginx_test(str(conf)), check=False)
            if result.returncode == 0 or "syntax is ok" in result.stderr:
                continue
            said = result.stderr.strip().replace(str(conf), "nginx.conf")
            raise RenderError(
                f"nginx -t ({version} on this machine) refused {NGINX_CONF} as rendered for "
                f"branch {branch}:\n{said}\n"
                f"next: {fix(NGINX_CONF, overridden)}; `swarm-deploy render --branch {branch} "
                "--out DIR` writes the rendered file whose lines nginx counts"
            )
    return version
