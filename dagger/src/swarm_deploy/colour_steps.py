"""The blue/green steps of a deploy (migrate, deploy the colour, gate, switch, singletons,
drain) and the repairs of what an interrupted one left. Pure."""

from __future__ import annotations

import shlex

from swarm_deploy import commands
from swarm_deploy.actions import (
    FinishDrain,
    HandOffDrain,
    HealthGate,
    Migrate,
    RewriteLive,
    Switch,
    run,
)
from swarm_deploy.config import Branch, Config
from swarm_deploy.deploy_steps import render_dir
from swarm_deploy.naming import DRAIN_JOB, label
from swarm_deploy.plan_facts import Facts
from swarm_deploy.plan_model import Phase, Request, Step
from swarm_deploy.render import colour_stack_file, wiring
from swarm_deploy.stack_secrets import BranchSecrets
from swarm_deploy.truth import leftovers

# how much longer than edge.drain a handed-off drain may take (its job's start, its removals)
DRAIN_SLACK = 60.0


def repair_steps(
    config: Config, branch: Branch, target: str, facts: Facts, whole: bool
) -> list[Step]:
    """What an interrupted deploy left disagreeing with what nginx serves: the file and
    the labels always; with `whole` (the release is live, no deploy follows), also a
    colour left running beside the live one and singletons out of place."""
    names = branch.names
    steps = []
    if facts.refile is not None:
        steps.append(Step(Phase.REPAIR, f"name {facts.refile} in live/ again", (
            RewriteLive(target, names.edge_service, facts.refile),
        ), "nginx serves what live/ names"))  # fmt: skip
    if facts.relabel:
        steps.append(Step(Phase.REPAIR, f"record that {facts.live_colour} is live", (
            run(commands.service_label(target, names.edge_service, facts.relabel)),
        ), "status and rollback read these labels"))  # fmt: skip
    if not whole or facts.live_colour is None:
        return steps
    steps += finish_drain_steps(config, branch, target, facts)
    for colour in leftovers(facts.live_colour, facts.stacks):
        stack = names.colour_stack(colour)
        if stack == facts.drain:
            continue  # finished above
        steps.append(Step(Phase.REPAIR, f"remove {stack}: it is not live", (
            run(commands.stack_rm(target, stack)),
        )))  # fmt: skip
    live = facts.stacks.get(facts.live_colour)
    for service, replicas in sorted(live.singletons.items() if live else ()):
        if replicas != 1:
            name = names.colour_service(facts.live_colour, service)
            steps.append(Step(Phase.REPAIR, f"run the singleton {name}", (
                run(commands.service_scale(target, name, 1)),
            )))  # fmt: skip
    return steps


def blue_green_steps(
    config: Config, branch: Branch, request: Request, new: str, old: str | None
) -> list[Step]:
    names = branch.names
    target = request.target
    files = render_dir(branch)
    paths = tuple(s.health for s in config.services.values() if s.health)
    new_stack = names.colour_stack(new)
    registry_auth = not request.transfer
    return [
        Step(
            Phase.COLOUR,
            f"deploy {new} ({new_stack}), singletons held at 0",
            (
                run(
                    commands.stack_deploy(
                        target,
                        f"{files}/{colour_stack_file(new)}",
                        new_stack,
                        registry_auth=registry_auth,
                        resolve_image="never",
                    )
                ),
            ),
            "images are pinned by digest already: the engine resolves nothing"
            + "".join(
                f"; at most {s.max_per_node} {s.name} per node"
                for s in config.services.values()
                if s.max_per_node
            ),
        ),
        Step(
            Phase.GATE,
            f"health gate for {new}",
            (HealthGate(target, names.edge_service, new, paths, config.gate),),
            f"on failure: remove {new_stack}; "
            + (f"{old} stays live" if old else "the branch keeps answering 503 (maintenance)"),
        ),
        Step(
            Phase.SWITCH,
            f"switch {branch.host} to {new}",
            (Switch(target, names.edge_service, new, paths),),
        ),
    ]


def migrate_steps(
    config: Config, branch: Branch, secrets: BranchSecrets, request: Request, colour: str
) -> list[Step]:
    steps = []
    for service in config.services.values():
        if not service.migrate or request.rollback:
            continue
        wired = wiring(config, branch, secrets, service, colour, request.release.version)
        networks = (branch.names.network,)
        job = Migrate(
            request.target,
            job=branch.names.job("migrate"),
            image=service.image,
            command=service.migrate,
            env=wired.env,
            secrets={key: secrets.branch[key].swarm_name for key in wired.secrets},
            networks=networks,
            labels=branch.names.owner_labels,
            timeout=config.timeouts.migrate,
        )
        steps.append(
            Step(
                Phase.MIGRATE,
                f"migrate with {service.name}'s new image: {shlex.join(service.migrate)}",
                (job,),
                "both colours share the databases: migrations must suit the live release too;"
                " a failure stops the deploy before the new colour starts",
            )
        )
    return steps


def after_switch_steps(
    config: Config,
    branch: Branch,
    request: Request,
    new: str,
    old: str | None,
    in_use: frozenset[str],
) -> list[Step]:
    """The singletons moved, then the old colour's drain handed off; `in_use`: the secrets
    and configs the new release's stacks name, which the drain job keeps."""
    names = branch.names
    target = request.target
    singletons = [s.name for s in config.services.values() if s.singleton]
    steps = []
    if singletons:
        stops = [] if old is None else [(old, name, 0) for name in singletons]
        starts = [(new, name, 1) for name in singletons]
        # a singleton the config added since the old colour was deployed has none to stop
        moves = tuple(
            run(
                commands.service_scale(target, names.colour_service(colour, name), replicas),
                done_if="not found" if replicas == 0 else None,
            )
            for colour, name, replicas in stops + starts
        )
        steps.append(
            Step(Phase.SINGLETONS, "move singletons: stop the old, then start the new", moves)
        )
    if old is not None:
        stack = names.colour_stack(old)
        hand_off = HandOffDrain(
            target, names.job(DRAIN_JOB), stack, config.edge.drain, config.edge.image,
            names.owner_labels | {label("drain-of"): stack}, in_use, config.swarm.docker_socket,
        )  # fmt: skip
        steps.append(
            Step(
                Phase.DRAIN,
                f"hand the drain of {stack} to the target",
                (hand_off,),
                f"for {config.edge.drain:g}s the old colour finishes in-flight requests and "
                "nginx's DNS cache (5 s) forgets it; the deploy returns without waiting, and "
                "a deploy of the branch that starts sooner waits for the rest",
            )
        )
    return steps


def finish_drain_steps(config: Config, branch: Branch, target: str, facts: Facts) -> list[Step]:
    """Before a colour the last deploy handed off is touched again: its drain, finished."""
    if facts.drain is None:
        return []
    names = branch.names
    # the job removes itself at the end: until then it could remove what this deploy starts
    wait = FinishDrain(target, names.job(DRAIN_JOB), facts.drain, config.edge.drain + DRAIN_SLACK)
    return [
        Step(
            Phase.REPAIR,
            f"finish the drain of {facts.drain or 'the old colour'}, handed off by the last deploy",
            (wait,),
            "its job removes the old colour, whose name this deploy reuses",
        )
    ]
