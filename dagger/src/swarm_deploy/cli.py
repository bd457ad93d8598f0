"""The `swarm-deploy` command: the same pipeline as the Dagger module, with host tools only."""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from swarm_deploy import __version__, interrupts, render, usecases
from swarm_deploy import plan as plan_module
from swarm_deploy.errors import CommandFailedError, ConfigError, ConfigErrors, SwarmDeployError
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import Plan, Step, plan_lines
from swarm_deploy.secrets import parse_env
from swarm_deploy.usecases import LOCK_WAIT

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
        "(12 hex) when it holds everything the builds read; otherwise it ends in a hash of "
        "the build contexts: <commit>-dirty-<hash>, or dev-<hash> outside git.",
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="swarm-deploy")
def main() -> None:
    """Deploy a multi-service app to Docker Swarm, one stack per git branch, blue/green.

    \b
    Start with a dry run: it reads the project (config, templates, build contexts) and
    nothing on the target, and changes nothing.
      swarm-deploy plan --branch develop
      swarm-deploy render --branch develop --out rendered/
    """


@main.command()
@config_option
def check(config_path: Path) -> None:
    """Validate the config, the templates next to it, and each secret value that is set.

    Every template is rendered for one branch of each rule; where nginx is installed,
    `nginx -t` parses each rendered nginx.conf (a deploy tests it in the edge's image too).
    """
    with _errors():
        project = Project.load(config_path)
        checked = usecases.check(usecases.CheckRequest(project))
    cfg, rendered, version = project.config, checked.rendered, checked.nginx
    out.print(
        f"{config_path}: ok — app {cfg.app}, {len(cfg.services)} services, "
        f"{len(cfg.shared)} shared services, {len(cfg.branches)} branch rules",
        markup=False,
    )
    out.print(f"templates: ok — rendered for {', '.join(rendered)}", markup=False)
    where = f"every deploy tests it again in the edge's image, {cfg.edge.image}, first"
    out.print(
        f"nginx -t: ok — {version} on this machine; {where}"
        if version
        else f"nginx -t: not run, nginx is not installed here; {where}",
        markup=False,
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
        request = usecases.PlanRequest(Project.load(config_path), branch, version, target)
        the_plan = usecases.plan(request)
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
        rendered = usecases.render(
            usecases.RenderRequest(Project.load(config_path), branch, version)
        )
    for path in render.write(rendered.files, out_dir):
        out.print(str(path))
    warn(rendered.warnings)


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


@main.command()
@config_option
@branch_option
@release_option
@host_option
@click.option(
    "--no-registry",
    "transfer",
    is_flag=True,
    help="Stream the images to the target (docker save | docker load) instead of pushing "
    "them: for a first try on a single-node target, before a registry is set up.",
)
@click.option("--force", is_flag=True, help="Deploy even when this release is already live.")
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="NAME=REF",
    help="An image already published, by digest (NAME=registry/repo@sha256:...), one per "
    "image of the config: nothing is built or pushed. The Dagger module deploys this way.",
)
@secrets_env_file_option
@update_shared_option
@lock_options
@actor_option
def deploy(
    config_path: Path,
    branch: str,
    version: str | None,
    target: str | None,
    transfer: bool,
    force: bool,
    images: tuple[str, ...],
    secrets_env_file: Path | None,
    update_shared: bool,
    lock_wait: float,
    actor: str | None,
) -> None:
    """Build, publish and deploy a branch blue/green; switch only after the health gate.

    \b
    Every secret is read before anything changes. If the new colour fails to start or
    fails its gate, it is removed and what was live stays live; the exit code is 1.
    """
    reporter = ConsoleReporter(out)
    with interrupts.as_exceptions(), _errors():
        project = Project.load(config_path)
        environ = environment(secrets_env_file)
        if environ.get("SWARM_DEPLOY_REGISTRY_TOKEN", "").startswith("ghs_"):
            err.print(
                "warning: the registry token looks like a workflow's GITHUB_TOKEN (ghs_...), "
                "which expires with the job: tasks the Swarm reschedules later could not pull. "
                "Use a token that lasts (a personal access token with read:packages).",
                style="yellow",
                markup=False,
            )
        request = usecases.DeployRequest(
            project, branch, version, target, environ, transfer=transfer, force=force,
            images=images, source_url=os.environ.get("SWARM_DEPLOY_SOURCE_URL"),
            actor=actor or deployer_name(), lock_wait=lock_wait, update_shared=update_shared,
        )  # fmt: skip
        outcome = usecases.deploy(request, reporter)
    report(outcome)


@main.command()
@config_option
@branch_option
@host_option
@update_shared_option
@secrets_env_file_option
@lock_options
@actor_option
def rollback(
    config_path: Path,
    branch: str,
    target: str | None,
    update_shared: bool,
    secrets_env_file: Path | None,
    lock_wait: float,
    actor: str | None,
) -> None:
    """Put the release before the live one back, through the same gate and switch.

    The images are the digests recorded when that release went live: nothing is built.
    Migrations do not run backwards. Rolling back twice returns to where you started.
    """
    reporter = ConsoleReporter(out)
    with interrupts.as_exceptions(), _errors():
        request = usecases.RollbackRequest(
            Project.load(config_path), branch, target, environment(secrets_env_file),
            actor=actor or deployer_name(), lock_wait=lock_wait, update_shared=update_shared,
        )  # fmt: skip
        outcome = usecases.rollback(request, reporter)
    report(outcome)


def environment(secrets_env_file: Path | None) -> dict[str, str]:
    """What `env:` secret sources read: the environment, and the --secrets-env-file."""
    environ = dict(os.environ)
    if secrets_env_file is not None:
        environ |= read_env_file(secrets_env_file)
    return environ


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (`secrets.parse_env`); values are never shown."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError("--secrets-env-file", f"cannot read {path} ({exc.strerror})") from None
    return parse_env(text, str(path))


def report(outcome: usecases.Outcome) -> None:
    the_plan = outcome.plan
    branch, version = the_plan.branch.name, the_plan.release.version
    where = plan_module.where(the_plan)
    if the_plan.up_to_date:
        out.print(
            f"{branch} is already at {version} ({the_plan.old_colour}) on {the_plan.target}: "
            f"nothing to do (--force deploys it again); it answers {where}",
            markup=False,
        )
    else:
        out.print(
            f"{branch} is live: {the_plan.new_colour}, release {version}, {where}",
            style="bold green",
            markup=False,
        )


@main.command()
@config_option
@host_option
@click.option("--branch", "-b", default=None, help="Only this branch.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(config_path: Path, target: str | None, branch: str | None, as_json: bool) -> None:
    """Show every branch on the target: live colour, release, age and task health."""
    with _errors():
        project = Project.load(config_path)
        found = usecases.status(usecases.StatusRequest(project, target, branch))
    cfg, target, branches, shared = project.config, found.target, found.branches, found.shared
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "target": target,
                    "branches": [b.to_json() for b in branches],
                    "shared": [s.to_json() for s in shared],
                }
            )
        )
        return
    table = Table(title=f"{cfg.app} on {target}", title_justify="left")
    for column in ("branch", "live", "release", "age", "by", "tasks", "ports"):
        table.add_column(column)
    for b in branches:
        tasks = ", ".join(f"{s.name.split('_', 1)[-1]} {s.running}/{s.desired}" for s in b.services)
        table.add_row(
            escape(b.branch), b.live_colour or "-", b.release or "-", b.age(found.now),
            escape(b.deployed_by or "-"), tasks, ", ".join(map(str, b.ports)) or "-",
        )  # fmt: skip
    out.print(table)
    if shared:
        out.print(
            "shared: "
            + ", ".join(f"{s.name} {s.running}/{s.desired}{where(s.nodes)}" for s in shared),
            markup=False,
        )
    for b in branches:
        for problem in b.problems:
            out.print(f"{b.branch}: {problem}", style="yellow", markup=False)
        if b.problems:
            out.print(f"  `swarm-deploy deploy --branch {b.branch}` repairs it", markup=False)
    if not branches:
        out.print("no branch of this app is deployed there", markup=False)


@main.command()
@config_option
@host_option
@click.option("--branch", "-b", default=None, help="The branch to remove.")
@click.option(
    "--stale",
    "stale_days",
    type=click.FloatRange(min=0),
    default=None,
    metavar="DAYS",
    help="Remove every branch not deployed for DAYS, except protected ones.",
)
@click.option(
    "--drop-data", is_flag=True, help="Also drop the branch's databases, role and Redis keys."
)
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option(
    "--force", is_flag=True, help="Also remove a protected branch (production: true, protected)."
)
@lock_options
@actor_option
def destroy(
    config_path: Path,
    target: str | None,
    branch: str | None,
    stale_days: float | None,
    drop_data: bool,
    dry_run: bool,
    force: bool,
    lock_wait: float,
    actor: str | None,
) -> None:
    """Remove a branch's stacks, network and secrets; other branches keep running.

    \b
    What the target holds of the branch is removed, whether or not a rule allows the
    branch now; a branch that left nothing there has nothing to remove (exit 0).
    Protected branches stay unless --force is given. Databases stay unless --drop-data
    is given. Safe to rerun.
      swarm-deploy destroy --branch feature/login
      swarm-deploy destroy --stale 14 --dry-run
    """
    if (branch is None) == (stale_days is None):
        raise click.UsageError("give exactly one of --branch B or --stale DAYS")
    reporter = ConsoleReporter(out)
    with interrupts.as_exceptions(), _errors():
        project = Project.load(config_path)
        branches = (
            [branch]
            if branch is not None
            else usecases.stale_branches(usecases.StaleRequest(project, stale_days or 0, target))
        )
        if not branches:
            out.print(
                f"no branch of {project.config.app} is older than {stale_days:g} days",
                markup=False,
            )
        for name in branches:
            request = usecases.DestroyRequest(
                project, name, target, drop_data=drop_data, dry_run=dry_run, force=force,
                actor=actor or deployer_name(), lock_wait=lock_wait,
            )  # fmt: skip
            print_destroyed(usecases.destroy(request, reporter), dry_run)


def print_destroyed(destroyed: usecases.Destroyed, dry_run: bool) -> None:
    name, target, steps = destroyed.branch, destroyed.target, destroyed.steps
    if not steps:
        out.print(f"nothing of {name} is on {target}: nothing to remove", markup=False)
    elif dry_run:
        for number, step in enumerate(steps, start=1):
            out.print(f"{number:>3}. [{step.phase}] {step.title}", markup=False)
            for action in step.actions:
                out.print(f"       {action.describe()}", markup=False)
    else:
        out.print(f"{name} removed from {target}", style="bold", markup=False)


@main.command()
@config_option
@host_option
@click.option("--branch", "-b", default=None, help="Free the lock of this branch.")
@click.option("--shared", is_flag=True, help="Free the lock of the shared stack.")
def unlock(config_path: Path, target: str | None, branch: str | None, shared: bool) -> None:
    """Free a lock whose holder is gone; a lock whose holder is alive stays.

    \b
    A holder is alive while it sends heartbeats (every lock.stale_after / 6); one that
    stopped is taken over by the next command anyway. Use this for a lock it cannot judge:
    one taken by a swarm-deploy that sends no heartbeat.
      swarm-deploy unlock --branch feature/login
      swarm-deploy unlock --shared
    """
    if (branch is None) == (not shared):
        raise click.UsageError("give exactly one of --branch B or --shared")
    with _errors():
        request = usecases.UnlockRequest(Project.load(config_path), branch, shared, target)
        freed = usecases.unlock(request)
    out.print(freed, markup=False)


def where(nodes: tuple[str, ...]) -> str:
    """The nodes a service's tasks run on: ` @ node1, node2`."""
    return f" @ {', '.join(nodes)}" if nodes else ""


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


class ConsoleReporter:
    """One line per step with its duration; a transient status line while a step runs."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Status | None = None
        self.title = ""

    def begin(self, number: int, total: int, step: Step) -> None:
        self.title = f"[{number:>2}/{total}] {step.phase:<10} {step.title}"
        if self.console.is_terminal:
            self.live = self.console.status(escape(self.title))
            self.live.start()

    def status(self, text: str) -> None:
        if self.live is not None:
            self.live.update(escape(f"{self.title}: {text}"))

    def end(self, step: Step, seconds: float, ok: bool) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        mark, style = ("ok  ", "green") if ok else ("FAIL", "red")
        self.console.print(f"{mark} {self.title}  {seconds:.1f}s", style=style, markup=False)

    def note(self, text: str) -> None:
        self.console.print(f"     {text}", style="dim", markup=False)


def print_plan(the_plan: Plan) -> None:
    for style, text in plan_lines(the_plan):
        out.print(text, style=style or None, markup=False)
    warn(the_plan.warnings)


def warn(warnings: Iterable[str]) -> None:
    for warning in warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)


@contextmanager
def _errors() -> Iterator[None]:
    """One clear message, exit 1 for a failed command (named by it: "destroy failed: ...")
    and 2 for bad input or an unreachable target; bugs keep their traceback."""
    try:
        yield
    except interrupts.Aborted as exc:
        err.print(f"aborted: {exc}", style="red", markup=False)
        sys.exit(1)
    except interrupts.Interrupted as exc:
        err.print(
            f"interrupted (SIG{exc.name}); the locks were released. Run the same command "
            "again: it finishes or repairs what this one left.",
            style="red",
            markup=False,
        )
        sys.exit(128 + signal.Signals[f"SIG{exc.name}"].value)
    except CommandFailedError as exc:
        err.print(f"{exc.command} failed: {exc}", style="red", markup=False)
        sys.exit(exc.exit_code)
    except ConfigErrors as exc:
        for error in exc.errors:
            err.print(f"error: {error}", style="red", markup=False)
        err.print(f"{len(exc.errors)} errors in the config", style="red", markup=False)
        sys.exit(2)
    except SwarmDeployError as exc:
        err.print(f"error: {exc}", style="red", markup=False)
        sys.exit(2)
