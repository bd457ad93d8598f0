"""The steps of a deploy up to the new colour: build, publish, secrets, the shared stack,
the data jobs, the nginx test and the edge. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from swarm_deploy import commands
from swarm_deploy.actions import NginxTest, PinDigests, Pipe, RunJob, WaitConverged, run
from swarm_deploy.config import Branch, Config
from swarm_deploy.datakinds import KINDS, DataKind
from swarm_deploy.naming import STACK_NAMESPACE, BranchNames, label, owner_labels
from swarm_deploy.plan_facts import Facts
from swarm_deploy.plan_model import SHARED, Phase, Request, Step
from swarm_deploy.render import EDGE_STACK, NGINX_CONF, SHARED_STACK
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
        if facts.read and secret.swarm_name in facts.existing_secrets:
            continue
        labels = owner_labels(app, scope) | {label("key"): secret.key}
        # the name carries the value's sha256: a secret of that name holds this very value,
        # created by a concurrent deploy since the facts were read
        create = run(
            commands.secret_create(target, secret.swarm_name, labels), secret.key, "already exists"
        )
        note = f"value {secret.source}" + ("" if facts.read else "; skipped if it exists")
        steps.append(Step(phase, f"create secret {secret.swarm_name}", (create,), note))
    return steps


def shared_steps(
    config: Config, branch: Branch, request: Request, facts: Facts, changes: tuple[str, ...]
) -> list[Step]:
    if not config.shared:
        return []
    stack = config.shared_names.stack
    if not facts.read:
        found = "; checked against what runs when the deploy starts"
    elif not facts.shared_stack:
        found = "; it does not run yet: this creates it"
    else:
        found = "; " + ("; ".join(changes) if changes else "what runs already matches")
    deploy = run(
        commands.stack_deploy(request.target, f"{render_dir(branch)}/{SHARED_STACK}", stack)
    )
    return [
        Step(
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
    ]


def database_steps(
    config: Config, branch: Branch, secrets: BranchSecrets, request: Request
) -> list[Step]:
    steps = []
    for kind in KINDS.values():
        if kind.branch_key not in secrets.branch:
            continue  # no service of the branch uses it
        admin = config.shared[kind.name].admin_password
        assert admin is not None
        job = data_job(
            config,
            branch.names,
            request.target,
            kind,
            kind.ensure,
            secrets.shared[admin].swarm_name,
            secrets.branch[kind.branch_key].swarm_name,
        )
        title = data_title(kind.ensure_title, config, branch.names, kind)
        note = f"a one-shot job on the shared network; {kind.note}"
        steps.append(Step(Phase.DATABASES, title, (job,), note))
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


def edge_changes(edge_hash: str, facts: Facts) -> bool:
    """The edge stack is deployed when it is new or any of its files changed."""
    return not (facts.read and facts.edge_hash == edge_hash)


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
    if not edge_changes(edge_hash, facts):
        return []
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
    return [
        Step(
            Phase.NGINX,
            f"test the new nginx config of {names.edge_stack} with nginx -t",
            (test,),
            "in the edge's image, the config mounted as the edge will mount it; if nginx "
            "refuses it, the deploy stops here with nginx's own error and the edge is untouched"
            + ("" if facts.read else "; skipped when the edge's files are unchanged"),
        )
    ]


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
    if not edge_changes(edge_hash, facts):
        return []
    names = branch.names
    deploy = commands.stack_deploy(
        request.target, f"{render_dir(branch)}/{EDGE_STACK}", names.edge_stack
    )
    return [
        Step(
            Phase.EDGE,
            f"deploy the edge stack {names.edge_stack}",
            (
                run(deploy),
                WaitConverged(request.target, names.edge_stack, config.timeouts.edge_start),
            ),
            (
                f"its config changed (or it is new): {edge_update(config, branch)}"
                if facts.read
                else "skipped when its config is unchanged"
            )
            + (
                f"; it runs on nodes labelled {config.swarm.edge_node_label}=true"
                if config.swarm.edge_node_label
                else ""
            ),
        )
    ]
