"""What the `swarm-deploy` command prints: progress, results, warnings, errors and exit codes."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from swarm_deploy import doctor, interrupts, template_files, usecases
from swarm_deploy import plan as plan_module
from swarm_deploy.config import Config
from swarm_deploy.errors import CommandFailedError, ConfigErrors, SwarmDeployError
from swarm_deploy.plan import SKIPPED, Plan, Step, certs_line, plan_lines

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class ConsoleReporter:
    """One line per step with its duration; a transient status line while a step runs."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Status | None = None
        self.title = ""

    def begin(self, number: int, total: int, step: Step) -> None:
        self.title = step_title(number, total, step)
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

    def skipped(self, number: int, total: int, step: Step) -> None:
        """Not run, so no time: the plan (`plan --read-target`) says why."""
        title = step_title(number, total, step)
        self.console.print(f"skip {title}  {SKIPPED}", style="dim", markup=False)

    def note(self, text: str) -> None:
        self.console.print(f"     {text}", style="dim", markup=False)


def step_title(number: int, total: int, step: Step) -> str:
    return f"[{number:>2}/{total}] {step.phase:<10} {step.title}"


def print_checked(
    config_path: Path, cfg: Config, checked: usecases.Checked, env_file: Path | None = None
) -> None:
    """check's lines; the missing secret values are warned of where `env_file` was meant
    to give them (without one, values come at deploy time, from its environment)."""
    rendered, version = checked.rendered, checked.nginx
    out.print(
        f"{config_path}: ok — app {cfg.app}, {len(cfg.services)} services, "
        f"{len(cfg.shared)} shared services, {len(cfg.branches)} branch rules",
        markup=False,
    )
    out.print(f"templates: ok — rendered for {', '.join(rendered)}", markup=False)
    overridden = "; ".join(f"{o.name}: {o.age.value}" for o in checked.overrides)
    overridden = overridden or "none, every one is packaged"
    out.print(f"templates overridden next to the config: {overridden}", markup=False)
    where = f"every deploy tests it again in the edge's image, {cfg.edge.image}, first"
    out.print(
        f"nginx -t: ok — {version} on this machine; {where}"
        if version
        else f"nginx -t: not run, nginx is not installed here; {where}",
        markup=False,
    )
    warn(filter(None, map(template_files.warning, checked.overrides)))
    if env_file is not None:
        warn(
            f"secret {name}: value from {cfg.secrets[name].describe()} is set neither in "
            f"{env_file} nor in the environment; a deploy would stop before changing "
            "anything: add it there"
            for name in checked.missing
        )


def print_plan(the_plan: Plan, as_json: bool = False) -> None:
    if as_json:
        out.print_json(json.dumps(the_plan.to_json()))
        return
    for style, text in plan_lines(the_plan):
        out.print(text, style=style or None, markup=False)
    warn(the_plan.warnings)


def print_decided(the_plan: Plan) -> None:
    """What a deploy decided from the target, before it runs: the plan's certificates
    line and its warnings."""
    line = certs_line(the_plan)
    if line is not None:
        out.print(line, markup=False)
    warn(the_plan.warnings)


def print_written(paths: Iterable[Path], warnings: Iterable[str]) -> None:
    for path in paths:
        out.print(str(path))
    warn(warnings)


def warn(warnings: Iterable[str]) -> None:
    for warning in warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)


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


def print_status(app: str, found: usecases.Status, as_json: bool) -> None:
    target, branches, shared = found.target, found.branches, found.shared
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
    table = Table(title=f"{app} on {target}", title_justify="left")
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


def where(nodes: tuple[str, ...]) -> str:
    """The nodes a service's tasks run on: ` @ node1, node2`."""
    return f" @ {', '.join(nodes)}" if nodes else ""


def print_none_stale(app: str, stale_days: float) -> None:
    out.print(f"no branch of {app} is older than {stale_days:g} days", markup=False)


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


MARKS = {"ok": ("ok     ", "green"), "warn": ("warn   ", "yellow"), "blocker": ("BLOCKER", "red")}


def print_diagnosis(found: usecases.Diagnosis) -> int:
    """One line per check (its fix beneath when it is not ok); the exit code: 1 when
    anything blocks a deploy, else 0."""
    out.print(f"doctor: {found.target}", style="bold", markup=False)
    for finding in found.findings:
        mark, style = MARKS[finding.level]
        out.print(f"{mark} {finding.check:<12} {finding.observed}", style=style, markup=False)
        if finding.fix:
            out.print(f"{'':21}fix: {finding.fix}", markup=False)
    blocking = doctor.blockers(found.findings)
    warnings = sum(f.level == "warn" for f in found.findings)
    if blocking:
        out.print(
            f"{blocking} blocker(s), {warnings} warning(s): a deploy to {found.target} "
            "would fail; fix the blockers and run doctor again",
            style="bold red", markup=False,
        )  # fmt: skip
        return 1
    out.print(
        f"ready: nothing blocks a deploy to {found.target} ({warnings} warning(s))",
        style="bold green", markup=False,
    )  # fmt: skip
    return 0


def print_unlocked(freed: str) -> None:
    out.print(freed, markup=False)


@contextmanager
def exit_on_error() -> Iterator[None]:
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
