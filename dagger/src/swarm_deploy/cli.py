"""The `swarm-deploy` command: the same pipeline as the Dagger module, with host tools only."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from swarm_deploy import __version__, pipeline, render
from swarm_deploy.errors import SwarmDeployError
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import Plan, plan_lines

F = TypeVar("F", bound=Callable[..., Any])

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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
        "(12 hex, '-dirty' when there are uncommitted changes).",
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="swarm-deploy")
def main() -> None:
    """Deploy a multi-service app to Docker Swarm, one stack per git branch, blue/green.

    \b
    Start with a dry run: it reads nothing but the config and changes nothing.
      swarm-deploy plan --branch develop
      swarm-deploy render --branch develop --out rendered/
    """


@main.command()
@config_option
def check(config_path: Path) -> None:
    """Validate the config and the templates next to it."""
    with _errors():
        cfg = Project.load(config_path).config
    out.print(
        f"{config_path}: ok — app {cfg.app}, {len(cfg.services)} services, "
        f"{len(cfg.shared)} shared services, {len(cfg.branches)} branch rules"
    )


@main.command()
@config_option
@branch_option
@release_option
@click.option(
    "--host",
    "target",
    default=None,
    help="local or ssh://user@host[:port]; default: target in the config.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(
    config_path: Path, branch: str, version: str | None, target: str | None, as_json: bool
) -> None:
    """Show, step by step, what `deploy --branch B` would do. Changes nothing.

    Reads no secret values into the output: secrets appear by versioned name only.
    """
    with _errors():
        project = Project.load(config_path)
        the_plan = pipeline.plan(
            project, branch, version or git_version(project.config.root), target=target
        )
    if as_json:
        out.print_json(json.dumps(the_plan.to_json()))
    else:
        print_plan(the_plan)


@main.command(name="render")
@config_option
@branch_option
@release_option
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the stacks and configs into (created if missing).",
)
def render_command(config_path: Path, branch: str, version: str | None, out_dir: Path) -> None:
    """Write a branch's stacks, nginx, Promtail, Prometheus and Grafana files."""
    with _errors():
        project = Project.load(config_path)
        files, warnings = pipeline.render(
            project, branch, version or git_version(project.config.root)
        )
    for path in render.write(files, out_dir):
        out.print(str(path))
    warn(warnings)


def print_plan(the_plan: Plan) -> None:
    for style, text in plan_lines(the_plan):
        out.print(text, style=style or None, markup=False)
    warn(the_plan.warnings)


def warn(warnings: Iterable[str]) -> None:
    for warning in warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)


def git_version(root: Path) -> str:
    """The commit of `root` (12 hex, '-dirty' with uncommitted changes), or 'dev' outside git."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    sha = git("rev-parse", "--short=12", "HEAD")
    if not sha:
        return "dev"
    return f"{sha}-dirty" if git("status", "--porcelain", "--untracked-files=no") else sha


@contextmanager
def _errors() -> Iterator[None]:
    """Print a SwarmDeployError as one clear message and exit 2; bugs keep their traceback."""
    try:
        yield
    except SwarmDeployError as exc:
        err.print(f"error: {exc}", style="red", markup=False)
        sys.exit(2)
