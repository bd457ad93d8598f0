"""swarm-deploy as a Dagger module: thin functions over the swarm_deploy package.

dagger call plan --branch develop
dagger call render --branch develop export --path rendered/
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Annotated

import dagger
from dagger import DefaultPath, Doc, Ignore, dag, function, object_type

from swarm_deploy import config, pipeline
from swarm_deploy.plan import plan_lines
from swarm_deploy.render import TEMPLATE_FILES

SOURCE_IGNORE = [
    ".git",
    ".venv",
    "**/__pycache__",
    "**/.mypy_cache",
    "**/.ruff_cache",
    "**/.pytest_cache",
    ".swarm-deploy",
    "dagger/sdk",
]

Branch = Annotated[str, Doc("The git branch, e.g. develop or feature/login.")]
ConfigPath = Annotated[str, Doc("Path of the config inside the source directory.")]
Release = Annotated[str, Doc("Image tag of the release, e.g. the git commit.")]


@object_type
class SwarmDeploy:
    """Blue/green deploys of a multi-service app to Docker Swarm, one stack per git branch."""

    source: Annotated[
        dagger.Directory,
        Doc("The project: swarm-deploy.yml, its templates and the images' build contexts."),
        DefaultPath("/"),
        Ignore(SOURCE_IGNORE),
    ]

    @function
    async def plan(
        self,
        branch: Branch,
        release: Release = "dev",
        config_path: ConfigPath = "swarm-deploy.yml",
        host: Annotated[str, Doc("local or ssh://user@host[:port]; default: the config's.")] = "",
        json_output: Annotated[bool, Doc("Return the plan as JSON.")] = False,
    ) -> str:
        """Show the steps a deploy of the branch would run; changes nothing."""
        project = await self._project(config_path)
        the_plan = pipeline.plan(project, branch, release, target=host or None, environ={})
        if json_output:
            return json.dumps(the_plan.to_json(), indent=2)
        lines = [text for _, text in plan_lines(the_plan)]
        lines += [f"warning: {warning}" for warning in the_plan.warnings]
        return "\n".join(lines) + "\n"

    @function
    async def render(
        self,
        branch: Branch,
        release: Release = "dev",
        config_path: ConfigPath = "swarm-deploy.yml",
    ) -> dagger.Directory:
        """Render the branch's stacks, nginx, Promtail, Prometheus and Grafana files."""
        project = await self._project(config_path)
        files, _ = pipeline.render(project, branch, release, environ={})
        out = dag.directory()
        for path, content in files.items():
            out = out.with_new_file(path, content)
        return out

    async def _project(self, config_path: str) -> pipeline.Project:
        """The config and its templates, read from the source directory."""
        text = await self.source.file(config_path).contents()
        root = PurePosixPath(config_path).parent
        templates = {
            name: await self.source.file(str(root / name)).contents() for name in TEMPLATE_FILES
        }
        return pipeline.Project(config.parse(text, source=config_path), templates)
