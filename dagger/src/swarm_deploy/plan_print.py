"""A plan as the CLI and Dagger show it: lines of text, and where users reach the branch."""

from __future__ import annotations

from urllib.parse import urlsplit

from swarm_deploy import certificates, commands
from swarm_deploy.actions import Command, Pipe
from swarm_deploy.config import Branch, Config
from swarm_deploy.config_tls import TraefikPorts
from swarm_deploy.plan_model import SKIPPED, Plan


def plan_lines(plan: Plan) -> list[tuple[str, str]]:
    """The steps as (style, text) lines: the CLI prints them styled, Dagger returns the text."""
    branch = plan.branch
    if plan.up_to_date:
        live = f"{plan.old_colour} is live at release {plan.release.version}: nothing to do"
    elif plan.repairs_only:
        live = f"{plan.old_colour} is live at release {plan.release.version}; repairs only"
    elif plan.old_colour:
        live = f"{plan.old_colour} is live; {plan.new_colour} replaces it"
    else:
        live = f"{plan.new_colour} goes live"
    if not plan.facts.read:
        live += " (target not read: this offline plan assumes no colour is live yet)"
    lines = [("bold", f"Plan: deploy {plan.app} branch {branch.name!r} to {plan.target}")]
    for heading, value in (
        ("host", branch.host),
        ("url", " and ".join(plan.urls) or NO_URL),
        ("slug", branch.slug),
        ("stacks", f"{branch.names.edge_stack}, {branch.names.colour_stack('blue')} | green"),
        ("release", plan.release.version),
        ("colour", live),
    ):
        lines.append(("", heading_line(heading, value)))
    certs = certs_line(plan)
    lines += [("", certs)] if certs is not None else []
    for number, step in enumerate(plan.steps, start=1):
        lines.append(("", ""))
        lines.append(("bold", f"{number:>3}. [{step.phase}] {step.title}"))
        if step.skipped:
            lines.append(("dim", f"       {SKIPPED}: {step.skipped}"))
            continue
        if step.note:
            lines.append(("dim", f"       {step.note}"))
        for action in step.actions:
            prefix = "$ " if isinstance(action, Command | Pipe) else "-> "
            lines.append(("", f"       {prefix}{action.describe()}"))
    return lines


def heading_line(heading: str, value: str) -> str:
    return f"  {heading:<8} {value}"


def certs_line(plan: Plan) -> str | None:
    """The certificates the deploy orders, as plan and deploy show them (None: no Traefik)."""
    found = plan.certificates
    return None if found is None else heading_line("certs", certificates.describe(found))


NO_URL = (
    "no URL: the branch's rule has no port and the shared stack no Traefik; "
    "give the rule a port or add shared/traefik"
)


def public_urls(config: Config, branch: Branch, target: str) -> tuple[str, ...]:
    """Where users reach a branch: its published port on the target's host, and its host
    name through Traefik (https, on the port Traefik publishes). A host name that no
    Traefik serves answers nothing."""
    urls = []
    if branch.rule.port is not None:
        host = "127.0.0.1" if target == commands.LOCAL else urlsplit(target).hostname
        urls.append(f"http://{host}:{branch.rule.port}")
    traefik = config.shared.get("traefik")
    if traefik is not None:
        urls.append((traefik.ports or TraefikPorts()).url(branch.host))
    return tuple(urls)


def where(plan: Plan) -> str:
    """`at <url> and <url>`, or why there is none."""
    return f"at {' and '.join(plan.urls)}" if plan.urls else f"({NO_URL})"
