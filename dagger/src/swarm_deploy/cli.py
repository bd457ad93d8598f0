"""The `swarm-deploy` command: the same pipeline as the Dagger module, with host tools only.

Each command parses its options into a `usecases` request and hands the result to
cli_output.py; the options several commands share are in cli_options.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from swarm_deploy import __version__, compose_init, doctor, interrupts, render, usecases
from swarm_deploy.cli_options import (
    actor_option,
    branch_option,
    config_option,
    deployer_name,
    environment,
    host_option,
    lock_options,
    read_env_file,
    release_option,
    secrets_env_file_option,
    update_shared_option,
)
from swarm_deploy.cli_output import (
    ConsoleReporter,
    exit_on_error,
    out,
    print_checked,
    print_decided,
    print_destroyed,
    print_diagnosis,
    print_none_stale,
    print_plan,
    print_status,
    print_unlocked,
    print_written,
    report,
    warn,
)
from swarm_deploy.cli_templates import templates
from swarm_deploy.engine import Executor
from swarm_deploy.errors import ConfigError
from swarm_deploy.pipeline import Project


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="swarm-deploy")
def main() -> None:
    """Deploy a multi-service app to Docker Swarm, one stack per git branch, blue/green.

    \b
    From a Compose app to a live branch, each step saying what the next needs:
      swarm-deploy init                            # swarm-deploy.yml from compose.yaml
      swarm-deploy check                           # the config and its templates
      swarm-deploy doctor --host ssh://deploy@vm1  # what the VM lacks, with the fixes
      swarm-deploy plan --branch develop           # every step; reads and changes nothing
      swarm-deploy deploy --branch develop         # live once its health gate passed

    \b
    plan --read-target also reads the target, as a deploy would, without a lock (still
    changing nothing); render --branch B --out DIR writes the files a deploy would use.
    A repository needs only swarm-deploy.yml (and its app): the templates are packaged,
    and a file next to the config overrides one of them (swarm-deploy templates --help).
    """


main.add_command(templates)


@main.command()
@click.option(
    "--from",
    "compose_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"The Compose file. Default: the first of {', '.join(compose_init.COMPOSE_FILES)} here.",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The .env the Compose file's ${VAR} references read (default: .env next to it). "
    "Its values are read only to tell credentials from settings; none is written or shown.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the config. Default: swarm-deploy.yml next to the Compose file.",
)
@click.option("--app", default=None, help="The app's name. Default: the Compose file's directory.")
@click.option(
    "--domain", default=None, help="Branch hosts are <host>.<domain>. Default: <app>.example.com."
)
@click.option("--registry", default=None, help="Where images are pushed. Default: ghcr.io/<app>.")
@click.option("--force", is_flag=True, help="Overwrite an existing config.")
@click.option(
    "--print",
    "to_stdout",
    is_flag=True,
    help="Print the config instead of writing it (the report goes to stderr).",
)
def init(
    compose_file: Path | None,
    env_file: Path | None,
    out_path: Path | None,
    app: str | None,
    domain: str | None,
    registry: str | None,
    force: bool,
    to_stdout: bool,
) -> None:
    """Write a swarm-deploy.yml for an existing Compose app, and report what it could not map.

    \b
    The docker CLI's own Compose loader (`docker stack config`) reads the file. Then:
      build:                  -> images (registry/<app>-<image>), one per distinct build
      services with a port    -> routed colour services: port, path, health (from a
                                 curl/wget healthcheck of localhost, else a default)
      other built services    -> colour services that are not routed (workers)
      postgres, redis, mongo  -> shared: (mysql, mariadb: not supported yet)
      settings naming them    -> `uses:`: the branch's relay, database and credentials
      PASSWORD, SECRET, TOKEN, KEY, URLs with a password
                              -> secrets read from the deployer's environment at deploy
                                 time, by variable name only
    No value of a .env file, nor any credential, is written or printed.

    \b
      swarm-deploy init                          # compose.yaml here -> swarm-deploy.yml
      swarm-deploy init --from deploy/compose.yaml --app shop --domain shop.example.com
      swarm-deploy init --print 2>&1 | less           # look first, write nothing
    """
    with exit_on_error():
        compose = compose_file or next(
            (Path(name) for name in compose_init.COMPOSE_FILES if Path(name).is_file()), None
        )
        if compose is None or not compose.is_file():
            raise ConfigError(
                "--from",
                f"no Compose file {compose or 'here'} ({', '.join(compose_init.COMPOSE_FILES)} "
                "looked for); run init in the app's directory or pass --from PATH",
            )
        base = compose.resolve().parent
        target = (out_path or base / "swarm-deploy.yml").resolve()
        if target.exists() and not force and not to_stdout:
            raise ConfigError(
                str(target),
                "exists already; pass --force to overwrite it, or --print to see "
                "what init would write",
            )
        env_path = env_file or (base / ".env")
        env_values = read_env_file(env_path, "--env-file") if env_file or env_path.is_file() else {}
        services = compose_init.parse(
            compose_init.read_compose(Executor(base), compose), str(compose)
        )
        options = compose_init.InitOptions(
            directory=base.name,
            app=app,
            domain=domain,
            registry=registry,
            context_base=os.path.relpath(base, target.parent),
            env_file=env_values,
        )
        adopted = compose_init.adopt(services, compose_init.env_file_names(services, base), options)
        text = compose_init.dump(adopted.config, os.path.relpath(compose.resolve(), target.parent))
        if to_stdout:
            click.echo(text, nl=False)
        else:
            target.write_text(text)
    shown_env = os.path.relpath(env_path) if env_values else None
    lines = [*adopted.report, "", compose_init.next_steps(shown_env)]
    if not to_stdout:
        lines.insert(0, f"wrote {target}")
    click.echo("\n".join(lines), err=to_stdout)


@main.command()
@config_option
@secrets_env_file_option
def check(config_path: Path, secrets_env_file: Path | None) -> None:
    """Validate the config, the templates, and each secret value that is set.

    Every template is rendered for one branch of each rule; where nginx is installed,
    `nginx -t` parses each rendered nginx.conf (a deploy tests it in the edge's image too).
    It lists the templates overridden next to the config, and warns of an override
    ejected from an older packaged file (`swarm-deploy templates diff NAME` shows it).
    With --secrets-env-file it also warns of each secret whose value neither that file
    nor the environment holds: a deploy given the same would stop before any change.
    """
    with exit_on_error():
        project = Project.load(config_path)
        checked = usecases.check(usecases.CheckRequest(project, environment(secrets_env_file)))
    print_checked(config_path, project.config, checked, secrets_env_file)


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
@click.option(
    "--read-target",
    is_flag=True,
    help="Read the target (a manager: --host or the config's target) as a deploy does, "
    "without a lock and changing nothing: the plan then shows the live colour, the steps "
    "a deploy would skip, and the certificates ordered with the week's count on the "
    "manager's clock (and a warning near the CA's limit). Default: offline, nothing is "
    "read there and the plan is that of a first deploy; --host alone does not read.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@secrets_env_file_option
def plan(
    config_path: Path,
    branch: str,
    version: str | None,
    target: str | None,
    read_target: bool,
    as_json: bool,
    secrets_env_file: Path | None,
) -> None:
    """Show, step by step, what `deploy --branch B` would do. Changes nothing.

    Reads no secret values into the output: secrets appear by versioned name only.
    """
    with exit_on_error():
        request = usecases.PlanRequest(
            Project.load(config_path), branch, version, target,
            environment(secrets_env_file), read_target=read_target,
        )  # fmt: skip
        the_plan = usecases.plan(request)
    print_plan(the_plan, as_json)


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
    with exit_on_error():
        rendered = usecases.render(
            usecases.RenderRequest(Project.load(config_path), branch, version)
        )
    print_written(render.write(rendered.files, out_dir), rendered.warnings)


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
@click.option(
    "--force",
    is_flag=True,
    help="Deploy even when this release is already live, and run the steps a version "
    "recorded on the target would skip (the data jobs, the shared stack, the edge): for a "
    "record you doubt, e.g. a database dropped by hand. Secrets that exist are not made again.",
)
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
    with interrupts.as_exceptions(), exit_on_error():
        project = Project.load(config_path)
        environ = environment(secrets_env_file)
        short_lived = doctor.registry_token(environ)
        if short_lived is not None:
            warn([short_lived])
        request = usecases.DeployRequest(
            project, branch, version, target, environ, transfer=transfer, force=force,
            images=images, source_url=os.environ.get("SWARM_DEPLOY_SOURCE_URL"),
            actor=actor or deployer_name(), lock_wait=lock_wait, update_shared=update_shared,
        )  # fmt: skip
        outcome = usecases.deploy(request, reporter, decided=print_decided)
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
    with interrupts.as_exceptions(), exit_on_error():
        request = usecases.RollbackRequest(
            Project.load(config_path), branch, target, environment(secrets_env_file),
            actor=actor or deployer_name(), lock_wait=lock_wait, update_shared=update_shared,
        )  # fmt: skip
        outcome = usecases.rollback(request, reporter, decided=print_decided)
    report(outcome)


@main.command()
@config_option
@host_option
@click.option("--branch", "-b", default=None, help="Only this branch.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(config_path: Path, target: str | None, branch: str | None, as_json: bool) -> None:
    """Show every branch on the target: live colour, release, age and task health."""
    with exit_on_error():
        project = Project.load(config_path)
        found = usecases.status(usecases.StatusRequest(project, target, branch))
    print_status(project.config.app, found, as_json)


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
    with interrupts.as_exceptions(), exit_on_error():
        project = Project.load(config_path)
        branches = (
            [branch]
            if branch is not None
            else usecases.stale_branches(usecases.StaleRequest(project, stale_days or 0, target))
        )
        if not branches:
            print_none_stale(project.config.app, stale_days or 0)
        for name in branches:
            request = usecases.DestroyRequest(
                project, name, target, drop_data=drop_data, dry_run=dry_run, force=force,
                actor=actor or deployer_name(), lock_wait=lock_wait,
            )  # fmt: skip
            print_destroyed(usecases.destroy(request, reporter), dry_run)


@main.command(name="doctor")
@config_option
@host_option
def doctor_command(config_path: Path, target: str | None) -> None:
    """Check that the target can take a first deploy; name the fix for each problem.

    \b
    Read-only: it changes nothing there. It checks, in order:
      docker cli   the docker CLI a deploy runs, here
      ssh          the target answers over ssh with a key, its host key known
      engine       the Docker engine answers (the checks below need it)
      docker       Docker Engine 20.10 or newer (25 or newer for fast deploys)
      swarm        swarm mode, and this node a manager
      node labels  a node carries each label the config's placement names
      registry     a docker login for the config's registry, and when it ends
      ports        each port a branch rule or Traefik publishes: free, or already its own
      memory, disk what the branches the rules allow need, against the host
      ipvs         IPVS in the kernel, when swarm/endpoint_mode or publish_mode need it
    \b
    Exit 0 when nothing blocks a deploy (warnings may remain), 1 when something does,
    2 for a config it cannot read.
      swarm-deploy doctor
      swarm-deploy doctor --host ssh://deploy@vm1
    docs/doctor.md says what each check reads and why.
    """
    with exit_on_error():
        project = Project.load(config_path)
        found = usecases.doctor(usecases.DoctorRequest(project, target))
    sys.exit(print_diagnosis(found))


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
    with exit_on_error():
        request = usecases.UnlockRequest(Project.load(config_path), branch, shared, target)
        freed = usecases.unlock(request)
    print_unlocked(freed)
