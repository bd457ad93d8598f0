"""Facts about the target + the config -> the ordered steps of a deploy. Pure.

`swarm-deploy plan` prints these steps; `deploy` runs the very same objects through
the one executor. An action is a docker argv (`Command`, `Pipe`) or a typed action
the deployer performs through the Engine API (waiting, gating, switching, pruning).

This module puts a deploy's steps in order; the parts live beside it: the actions
(actions.py, record.py), the model (plan_model.py, plan_facts.py), the step builders
(deploy_steps.py, colour_steps.py) and the printing (plan_print.py). Their public names
are importable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from swarm_deploy import certificates
from swarm_deploy.actions import (
    Command,
    EnsureData,
    FinishDrain,
    HandOffDrain,
    HealthGate,
    Migrate,
    NginxTest,
    PinDigests,
    Pipe,
    Prune,
    RemoveIfPresent,
    RenderFiles,
    RewriteLive,
    RunJob,
    Switch,
    WaitConverged,
    WaitGone,
    run,
)
from swarm_deploy.claims import uses
from swarm_deploy.colour_steps import (
    after_switch_steps,
    blue_green_steps,
    finish_drain_steps,
    migrate_steps,
    repair_steps,
)
from swarm_deploy.config import Branch, Config
from swarm_deploy.deploy_steps import (
    build_steps,
    data_inputs,
    data_job,
    data_title,
    data_versions,
    database_steps,
    edge_steps,
    nginx_test_steps,
    publish_steps,
    render_dir,
    secret_steps,
    shared_steps,
)
from swarm_deploy.engine import parse_time
from swarm_deploy.errors import TargetError
from swarm_deploy.plan_facts import Facts
from swarm_deploy.plan_model import (
    SHARED,
    SKIPPED,
    UNDER_SHARED_LOCK,
    Action,
    Phase,
    Plan,
    Request,
    Step,
    lock_runs,
)
from swarm_deploy.plan_print import NO_URL, certs_line, plan_lines, public_urls, where
from swarm_deploy.record import Record, data_version, deploy_fingerprint, state_labels
from swarm_deploy.stack_secrets import BranchSecrets

__all__ = [
    "NO_URL",
    "SHARED",
    "SKIPPED",
    "UNDER_SHARED_LOCK",
    "Action",
    "Command",
    "EnsureData",
    "Facts",
    "FinishDrain",
    "HandOffDrain",
    "HealthGate",
    "Migrate",
    "NginxTest",
    "Phase",
    "PinDigests",
    "Pipe",
    "Plan",
    "Prune",
    "Record",
    "RemoveIfPresent",
    "RenderFiles",
    "Request",
    "RewriteLive",
    "RunJob",
    "Step",
    "Switch",
    "WaitConverged",
    "WaitGone",
    "certs_line",
    "data_job",
    "data_title",
    "data_version",
    "deploy_fingerprint",
    "deploy_plan",
    "lock_runs",
    "plan_lines",
    "public_urls",
    "render_dir",
    "run",
    "state_labels",
    "where",
]


def deploy_plan(
    config: Config,
    branch: Branch,
    secrets: BranchSecrets,
    request: Request,
    *,
    facts: Facts = Facts(),
    edge_hash: str = "",
    nginx_config: str = "",
    in_use: frozenset[str] = frozenset(),
    shared_changes: tuple[str, ...] = (),
    shared_definitions: Mapping[str, str] = MappingProxyType({}),
    fingerprint: str = "",
) -> Plan:
    """The steps that deploy `request.release` of `branch`, in order.

    `nginx_config` is the Swarm config the edge stack names for the rendered nginx.conf.
    `in_use` names every secret and config the rendered stacks reference: prune keeps them.
    `shared_changes` says how the shared stack will change (what claims.check_shared found);
    `shared_definitions` is the hash of each shared service's rendered definition.
    `fingerprint` (deploy_fingerprint) is recorded; when the live one equals it, and only
    then, there is nothing to do (or only repairs).
    """
    if request.transfer and facts.nodes > 1:
        raise TargetError(
            f"{request.target} is a swarm of {facts.nodes} nodes: images streamed without a "
            "registry would reach only the node the deploy connects to; push to a registry "
            "instead (drop --no-registry)"
        )
    old = facts.live_colour
    new = "green" if old == "blue" else "blue"
    urls = public_urls(config, branch, request.target)
    # a release name alone says too little: the same one with another secret value,
    # config or template, or rebuilt from other sources, is not what runs
    # a rollback is always deployed; --force also runs what the recorded versions would skip
    again = request.force or request.rollback
    if old is not None and fingerprint and facts.fingerprint == fingerprint and not again:
        repairs = tuple(repair_steps(config, branch, request.target, facts, whole=True))
        return Plan(
            config.app, branch, request, old, old, facts, repairs,
            up_to_date=not repairs, repairs_only=bool(repairs), urls=urls,
        )  # fmt: skip
    target = request.target
    inputs = data_inputs(config, branch, secrets, shared_definitions)
    steps = [
        *repair_steps(config, branch, target, facts, whole=False),
        *build_steps(config, request),
        *publish_steps(config, request),
        Step(Phase.RENDER, "render the branch's files", (RenderFiles(render_dir(branch)),)),
        *nginx_test_steps(config, branch, request, edge_hash, nginx_config, facts),
        *secret_steps(target, config.app, branch.slug, secrets.branch.values(), facts),
        # one hold of the shared lock: the data jobs log in with the secrets just ensured
        *secret_steps(target, config.app, "shared", secrets.shared.values(), facts, SHARED),
        *shared_steps(config, branch, request, facts, shared_changes, shared_definitions),
        *database_steps(config, branch, secrets, request, facts, inputs),
        *edge_steps(config, branch, request, edge_hash, facts),
        *finish_drain_steps(config, branch, target, facts),
        *migrate_steps(config, branch, secrets, request, new),
        *blue_green_steps(config, branch, request, new, old),
        Step(
            Phase.RECORD,
            "record the live colour and release on the Swarm",
            (
                Record(
                    target,
                    branch.names.edge_service,
                    new,
                    edge_hash,
                    request,
                    facts,
                    claims={"host": branch.host, "uses": ",".join(uses(config))},
                    fingerprint=fingerprint,
                    data=data_versions(inputs, facts),
                ),
            ),
            "right after the switch, so the next deploy knows what is live",
        ),
        *after_switch_steps(config, branch, request, new, old, in_use),
        Step(
            Phase.PRUNE,
            "remove the branch's secrets and configs nothing uses any more",
            (Prune(target, config.app, branch.slug, (branch.names.edge_stack,), in_use),),
        ),
    ]
    prune_shared = Step(
        SHARED,
        "remove shared secrets and configs nothing uses any more",
        (Prune(target, config.app, "shared", (config.shared_names.stack,), in_use),),
    )
    # nor does it wait for the shared lock after the switch
    if facts.read and not any(step.phase is SHARED and not step.skipped for step in steps):
        prune_shared = prune_shared.skip(
            "this deploy creates no shared secret and deploys no shared stack: nothing shared "
            "is left unused by it"
        )
    steps.append(prune_shared)
    now = parse_time(request.deployed_at) if request.deployed_at else None
    certs = certificates.certificates(config, branch, facts, now)
    near_limit = certificates.warning(certs) if certs is not None else None
    return Plan(
        config.app, branch, request, new, old, facts, tuple(steps),
        (*secrets.warnings(), *([near_limit] if near_limit else [])),
        urls=urls, certificates=certs,
    )  # fmt: skip
