"""The steps of a deploy up to the new colour: build, publish, secrets, the shared stack,
the data jobs, the nginx test and the edge. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from swarm_deploy import commands
from swarm_deploy.actions import (
    EnsureData,
    NginxTest,
    PinDigests,
    Pipe,
    RunJob,
    WaitConverged,
    run,
)
from swarm_deploy.config import Branch, Config
from swarm_deploy.datakinds import KINDS, DataKind
from swarm_deploy.naming import STACK_NAMESPACE, BranchNames, label, owner_labels
from swarm_deploy.plan_facts import Facts
from swarm_deploy.plan_model import SHARED, Phase, Request, Step
from swarm_deploy.record import data_label, data_version
from swarm_deploy.render import EDGE_STACK, NGINX_CONF, SHARED_STACK, fingerprint
from swarm_deploy.stack_secrets import BranchSecrets, StackSecret

WORKDIR = ".swarm-deploy"


def render_dir(branch: Branch) -> str:
    """Where deploy writes the branch's rendered files, relative to the project."""
    return f"{WORKDIR}/{branch.slug}"


def build_steps(config: Config, request: Request) -> list[Step]:
    if request.prebuilt:
        return []
    labels = {"org.opencontainers.image.revision": request.release.version}
    if request.source_url:
        labels["org.opencontainers.image.source"] = request.source_url
    return [
        Step(
            Phase.BUILD,
            f"build {image.name} for {image.platform}",
            (
                run(
                    commands.build(
                        image,
                        context=image.context,
                        dockerfile=f"{image.context}/{image.dockerfile}",
                        ref=request.release.images[image.name],
                        labels=labels,
                    )
                ),
            ),
        )
        for image in config.images.values()
    ]


def publish_steps(config: Config, request: Request) -> list[Step]:
    if request.prebuilt:
        return []
    refs = tuple(request.release.images[name] for name in config.images)
    if not request.transfer:
        pushes = [Step(Phase.PUBLISH, f"push {ref}", (run(commands.push(ref)),)) for ref in refs]
        return [*pushes, Step(Phase.PUBLISH, "pin digests", (PinDigests(refs),))]
    if request.target == commands.LOCAL:
        return []  # built on the target's own engine: nothing to move
    return [
        Step(
            Phase.TRANSFER,
            f"stream {ref} to {request.target} (no registry)",
            (Pipe(tuple(commands.save(ref)), tuple(commands.load(request.target))),),
            "single-node targets only: other nodes could not pull this image",
        )
        for ref in refs
    ]


def secret_steps(
    target: str,
    app: str,
    scope: str,
    secrets: Iterable[StackSecret],
    facts: Facts,
    phase: Phase = Phase.SECRETS,
) -> list[Step]:
    steps = []
    for secret in secrets:
        title = f"create secret {secret.swarm_name}"
        if facts.read and secret.swarm_name in facts.existing_secrets:
            # no record to doubt: a secret of that name holds this very value
            exists = "it exists on the target, and its name carries its value's hash"
            steps.append(Step(phase, title, ()).skip(exists))
            continue
        labels = owner_labels(app, scope) | {label("key"): secret.key}
        # the name carries the value's sha256: a secret of that name holds this very value,
        # created by a concurrent deploy since the facts were read
        create = run(
            commands.secret_create(target, secret.swarm_name, labels), secret.key, "already exists"
        )
        note = f"value {secret.source}" + ("" if facts.read else "; skipped if it exists")
        steps.append(Step(phase, title, (create,), note))
    return steps


def unless_recorded(step: Step, request: Request, matched: str | None) -> Step:
    """`step`, skipped when `matched` says which version recorded on the Swarm shows it
    would change nothing; --force runs it all the same (for an operator who doubts a
    record: a database dropped by hand)."""
    if matched is None:
        return step
    if request.force:
        return replace(step, note=f"{step.note}; run with --force, although {matched}")
    return step.skip(matched)


def shared_steps(
    config: Config,
    branch: Branch,
    request: Request,
    facts: Facts,
    changes: tuple[str, ...],
    definitions: Mapping[str, str],
) -> list[Step]:
    """The shared stack deployed and waited for, unless each of its services runs, settled,
    the definition this deploy renders (its label says which), and no other service runs."""
    if not config.shared:
        return []
    stack = config.shared_names.stack
    if not facts.read:
        found = (
            "; checked against what runs when the deploy starts: skipped when every service "
            "runs its rendered definition"
        )
    elif not facts.shared_stack:
        found = "; it does not run yet: this creates it"
    else:
        found = "; " + ("; ".join(changes) if changes else "what runs already matches")
    deploy = run(
        commands.stack_deploy(request.target, f"{render_dir(branch)}/{SHARED_STACK}", stack)
    )
    step = Step(
        SHARED,
        f"ensure the shared stack {stack}",
        (deploy, WaitConverged(request.target, stack, config.timeouts.shared_start)),
        "stateful services update stop-first; unchanged services are not restarted"
        + found
        + (
            f"; they run on nodes labelled {config.swarm.data_node_label}=true"
            if config.swarm.data_node_label
            else ""
        ),
    )
    running = facts.shared_stack
    as_rendered = (
        facts.read
        and set(running) == set(definitions)
        and all(running[k].definition == d and running[k].settled for k, d in definitions.items())
    )
    shown = ", ".join(f"{kind}={definition}" for kind, definition in sorted(definitions.items()))
    matched = (
        f"each service runs the definition rendered now, every task up, and no other runs "
        f"({label('definition')}: {shown})"
    )
    return [unless_recorded(step, request, matched if as_rendered else None)]


def _branch_kinds(secrets: BranchSecrets) -> list[DataKind]:
    """The data kinds some service of the branch uses (each has its branch's credential)."""
    return [kind for kind in KINDS.values() if kind.branch_key in secrets.branch]


def _ensure_job(
    config: Config, branch: Branch, secrets: BranchSecrets, target: str, kind: DataKind
) -> RunJob:
    admin = config.shared[kind.name].admin_password
    assert admin is not None
    return data_job(
        config,
        branch.names,
        target,
        kind,
        kind.ensure,
        secrets.shared[admin].swarm_name,
        secrets.branch[kind.branch_key].swarm_name,
    )


def data_inputs(
    config: Config, branch: Branch, secrets: BranchSecrets, definitions: Mapping[str, str]
) -> dict[str, str]:
    """Kind -> a hash of every input that decides what the branch's data job of that kind
    does, but the shared service's ID (record.data_version adds it): the job's command
    (its script, the service's image, the admin's and the branch's secrets by their Swarm
    names, which carry their values' hashes, the role and its databases) and the
    definition of the shared service it runs against."""
    inputs = {}
    for kind in _branch_kinds(secrets):
        job = _ensure_job(config, branch, secrets, commands.LOCAL, kind)
        inputs[kind.name] = fingerprint("\0".join((*job.argv, definitions.get(kind.name, ""))))
    return inputs


def data_versions(inputs: Mapping[str, str], facts: Facts) -> dict[str, str]:
    """Kind -> the version the branch's data job of that kind would record against the
    shared service that runs now; a kind whose service does not run yet has none."""
    return {
        kind: data_version(hashed, facts.shared_stack[kind].id)
        for kind, hashed in inputs.items()
        if kind in facts.shared_stack and facts.shared_stack[kind].id
    }


def database_steps(
    config: Config,
    branch: Branch,
    secrets: BranchSecrets,
    request: Request,
    facts: Facts,
    inputs: Mapping[str, str],
) -> list[Step]:
    """The branch's data jobs; each is skipped when the edge records the version it would
    record now (the same job, against the very service that runs)."""
    versions = data_versions(inputs, facts)
    steps = []
    for kind in _branch_kinds(secrets):
        service = config.shared_names.service(kind.name)
        job = EnsureData(
            _ensure_job(config, branch, secrets, request.target, kind),
            kind.name,
            service,
            inputs[kind.name],
        )
        title = data_title(kind.ensure_title, config, branch.names, kind)
        note = f"a one-shot job on the shared network; {kind.note}" + (
            "" if facts.read else "; skipped when the edge records the version it has now"
        )
        version, key = versions.get(kind.name), data_label(kind.name)
        matched = (
            f"the edge records {key}={version}: this job ran against this very {service}"
            if facts.read and version is not None and facts.state.get(key) == version
            else None
        )
        steps.append(unless_recorded(Step(Phase.DATABASES, title, (job,), note), request, matched))
    return steps


def data_title(template: str, config: Config, names: BranchNames, kind: DataKind) -> str:
    return kind.title(template, names, config.shared[kind.name].databases)


def data_job(
    config: Config,
    names: BranchNames,
    target: str,
    kind: DataKind,
    script: str,
    admin_secret: str,
    branch_secret: str | None = None,
) -> RunJob:
    """A one-shot job that runs `script` (the kind's ensure or drop) for the branch against
    the shared service of `kind`, as that service's admin."""
    service = config.shared[kind.name]
    job = names.job(kind.job)
    argv = commands.data_job(
        target,
        kind,
        script=script,
        name=job,
        image=service.image,
        network=config.shared_names.network,
        host=config.shared_names.service(kind.name),
        admin_secret=admin_secret,
        args=kind.job_args(names, service.databases),
        labels=names.owner_labels,
        branch_secret=branch_secret,
    )
    return RunJob(tuple(argv), job, config.timeouts.data_jobs)


def edge_unchanged(edge_hash: str, facts: Facts) -> str | None:
    """Why the edge is neither tested nor deployed: its files hash to what it records (it
    is deployed when it is new or any of its files changed); None: it is."""
    if facts.read and facts.edge_hash == edge_hash:
        return (
            f"the edge records {label('edge-hash')}={edge_hash[:12]}..., the hash of its files now"
        )
    return None


def nginx_test_steps(
    config: Config,
    branch: Branch,
    request: Request,
    edge_hash: str,
    nginx_config: str,
    facts: Facts,
) -> list[Step]:
    """Before anything changes, the nginx config the edge would restart with is tested
    where it will run: a config nginx refuses would stop the edge (stop-first) until Swarm
    rolled it back, refusing every connection meanwhile."""
    names = branch.names
    file = f"{render_dir(branch)}/{NGINX_CONF}"
    # the label the edge stack gives its configs: its deploy adopts this one, prune sees it
    create = commands.config_create(
        request.target, nginx_config, file, {STACK_NAMESPACE: names.edge_stack}
    )
    job = names.job("nginx-t")
    argv = commands.run_job(
        request.target,
        name=job,
        image=config.edge.image,
        command=commands.nginx_test(),
        networks=[],
        secrets={},
        env={},
        labels=branch.names.owner_labels,
        configs={commands.NGINX_CONF_PATH: nginx_config},
    )
    test = NginxTest(
        request.target,
        config.edge.image,
        nginx_config,
        file,
        run(create, done_if="already exists"),
        RunJob(tuple(argv), job, config.timeouts.edge_start),
    )
    step = Step(
        Phase.NGINX,
        f"test the new nginx config of {names.edge_stack} with nginx -t",
        (test,),
        "in the edge's image, the config mounted as the edge will mount it; if nginx "
        "refuses it, the deploy stops here with nginx's own error and the edge is untouched"
        + ("" if facts.read else "; skipped when the edge's files are unchanged"),
    )
    return [unless_recorded(step, request, edge_unchanged(edge_hash, facts))]


def edge_update(config: Config, branch: Branch) -> str:
    """How the branch's nginx tasks are replaced (stacks/edge.yml's update_config)."""
    replicas = config.edge_replicas(branch.rule)
    if config.host_port(branch.rule):
        return "nginx restarts stop-first, ~0.6 s of 503"
    if replicas == 1:
        return "nginx restarts start-first"
    return f"its {replicas} nginx tasks restart one at a time, start-first"


def edge_steps(
    config: Config, branch: Branch, request: Request, edge_hash: str, facts: Facts
) -> list[Step]:
    names = branch.names
    deploy = commands.stack_deploy(
        request.target, f"{render_dir(branch)}/{EDGE_STACK}", names.edge_stack
    )
    unchanged = edge_unchanged(edge_hash, facts)
    if not facts.read:
        why = "skipped when its config is unchanged"
    elif unchanged is None:
        why = f"its config changed (or it is new): {edge_update(config, branch)}"
    else:
        why = edge_update(config, branch)  # --force, or shown with the reason it is skipped
    step = Step(
        Phase.EDGE,
        f"deploy the edge stack {names.edge_stack}",
        (
            run(deploy),
            WaitConverged(request.target, names.edge_stack, config.timeouts.edge_start),
        ),
        why
        + (
            f"; it runs on nodes labelled {config.swarm.edge_node_label}=true"
            if config.swarm.edge_node_label
            else ""
        ),
    )
    return [unless_recorded(step, request, unchanged)]
