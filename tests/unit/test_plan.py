"""The plan: the ordered steps of a deploy, the exact commands, and never a secret value."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from swarm_deploy import config, deploy_steps, pipeline, stack_secrets, usecases
from swarm_deploy.commands import DRAIN_SCRIPT
from swarm_deploy.config_tls import TraefikPorts
from swarm_deploy.datakinds import KINDS
from swarm_deploy.errors import SecretValueError, TargetError
from swarm_deploy.naming import LABEL
from swarm_deploy.plan import (
    NO_URL,
    Command,
    EnsureData,
    Facts,
    FinishDrain,
    HandOffDrain,
    HealthGate,
    Migrate,
    NginxTest,
    Prune,
    Record,
    Switch,
    WaitConverged,
    lock_runs,
    plan_lines,
)
from swarm_deploy.render import Release, fingerprint
from swarm_deploy.secrets import SecretSource
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.render_helpers import RELEASE, SENTINELS, render_branch

SSH = "ssh://deploy@vm1.gaia.example.com"


def phases(the_plan: pipeline.Plan) -> list[str]:
    return [step.phase for step in the_plan.steps]


def commands_of(the_plan: pipeline.Plan) -> list[list[str]]:
    return [
        list(action.argv)
        for step in the_plan.steps
        for action in step.actions
        if isinstance(action, Command)
    ]


def test_first_deploy_runs_every_phase_in_order(project: pipeline.Project) -> None:
    the_plan = usecases.plan(usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS))
    assert the_plan.new_colour == "blue"
    assert the_plan.old_colour is None
    assert phases(the_plan) == [
        "build", "build", "build", "publish", "publish", "publish", "publish", "render",
        "nginx",
        "secrets", "secrets", "secrets", "secrets", "secrets",
        "shared", "shared", "shared", "shared", "shared", "databases", "databases", "databases",
        "edge", "migrate", "colour", "gate", "switch", "record", "singletons", "prune", "shared",
    ]  # fmt: skip


def test_only_the_steps_that_touch_shared_things_take_the_shared_lock(
    project: pipeline.Project,
) -> None:
    """The deployer holds the shared lock through each run of such steps: the shared
    secrets, the shared stack and the data jobs that log in with those secrets, in one
    hold (a rotation between them would lock the jobs out: WRONGPASS), and the pruning
    of shared leftovers."""
    the_plan = usecases.plan(usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS))
    held = [
        [re.sub(r"_[0-9a-f]{10}$", "", step.title) for _, step in run]
        for shared, run in lock_runs(the_plan.steps)
        if shared
    ]
    assert held == [
        [
            "create secret gaia_shared_postgres_admin",
            "create secret gaia_shared_mongo_admin",
            "create secret gaia_shared_redis_admin",
            "create secret gaia_shared_grafana_admin",
            "ensure the shared stack gaia-shared",
            "ensure PostgreSQL role gaia_develop and its databases",
            "ensure MongoDB user gaia_develop with readWrite on gaia_develop_events",
            "ensure Redis user gaia_develop for keys gaia:develop:*",
        ],
        ["remove shared secrets and configs nothing uses any more"],
    ]


def test_build_commands_are_exact_and_always_name_the_platform(project: pipeline.Project) -> None:
    the_plan = usecases.plan(
        usecases.PlanRequest(
            project,
            "develop",
            RELEASE,
            environ=SENTINELS,
            source_url="https://github.com/acme/gaia",
        )
    )
    assert commands_of(the_plan)[0] == [
        "docker", "build",
        "--platform", "linux/amd64",
        "--file", "examples/gaia/backend/Dockerfile",
        "--tag", "ghcr.io/acme/gaia-backend:0123456789ab",
        "--label", "org.opencontainers.image.revision=0123456789ab",
        "--label", "org.opencontainers.image.source=https://github.com/acme/gaia",
        "examples/gaia/backend",
    ]  # fmt: skip


def test_stack_deploys_go_to_the_target_with_registry_auth(project: pipeline.Project) -> None:
    the_plan = usecases.plan(usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS))
    deploys = [argv for argv in commands_of(the_plan) if argv[3:5] == ["stack", "deploy"]]
    assert deploys[-1] == [
        "docker", "--host", SSH, "stack", "deploy",
        "--compose-file", ".swarm-deploy/develop/stacks/app-blue.yml",
        "--with-registry-auth", "--resolve-image", "never", "--prune", "--detach=true",
        "gaia-develop-blue",
    ]  # fmt: skip
    assert [argv[-1] for argv in deploys] == [
        "gaia-shared",
        "gaia-develop-edge",
        "gaia-develop-blue",
    ]


def test_secrets_go_to_stdin_by_versioned_name(project: pipeline.Project) -> None:
    the_plan = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, host="local")
    )
    creates = [
        action
        for step in the_plan.steps
        for action in step.actions
        if isinstance(action, Command) and action.argv[1:3] == ("secret", "create")
    ]
    session = next(a for a in creates if a.stdin_secret == "session_key")  # noqa: S105
    assert session.argv[-1] == "-"
    assert session.argv[-2].startswith("gaia_develop_session_key_")
    assert session.describe().endswith(" - < secret session_key")
    assert {a.stdin_secret for a in creates} == {
        "postgres_admin", "mongo_admin", "redis_admin", "grafana_admin",
        "pg_password", "mongo_password", "redis_password", "session_key", "telegram_token",
    }  # fmt: skip


def test_no_secret_value_appears_in_the_plan_text_or_json(project: pipeline.Project) -> None:
    for branch in ("develop", "feature/JIRA-123_add-login"):
        the_plan = usecases.plan(usecases.PlanRequest(project, branch, RELEASE, environ=SENTINELS))
        shown = "\n".join(text for _, text in plan_lines(the_plan)) + json.dumps(the_plan.to_json())
        shown += repr(the_plan)
        for value in SENTINELS.values():
            assert value not in shown


def test_with_blue_live_green_is_deployed_then_blue_drained_and_removed(
    project: pipeline.Project,
) -> None:
    facts = Facts(read=True, live_colour="blue")
    the_plan = usecases.plan(
        usecases.PlanRequest(
            project, "develop", RELEASE, environ=SENTINELS, facts=facts, host="local"
        )
    )
    assert the_plan.new_colour == "green"
    steps = {step.phase: step for step in the_plan.steps}
    gate = steps["gate"].actions[0]
    assert isinstance(gate, HealthGate)
    assert (gate.colour, gate.paths, gate.gate.consecutive) == (
        "green",
        ("/api/health", "/health"),
        3,
    )
    switch = steps["switch"].actions[0]
    assert isinstance(switch, Switch)
    assert switch.colour == "green"
    assert [a.argv for a in steps["singletons"].actions if isinstance(a, Command)] == [
        ("docker", "service", "scale", "--detach", "gaia-develop-blue_bot=0"),
        ("docker", "service", "scale", "--detach", "gaia-develop-green_bot=1"),
    ]
    (drain,) = steps["drain"].actions
    assert isinstance(drain, HandOffDrain)
    # the services are the old colour's, as they run when the job is started
    assert drain.argv(
        ["gaia-develop-blue_backend", "gaia-develop-blue_bot"], ["gaia_develop_pg_password_0"]
    ) == [
        "docker", "service", "create",
        "--name", "gaia-develop-drain",
        "--mode", "replicated-job",
        "--restart-condition", "none",
        "--detach",
        "--with-registry-auth",
        "--constraint", "node.role==manager",
        "--mount", "type=bind,source=/var/run/docker.sock,target=/var/run/docker.sock",
        "--label", "swarm-deploy.app=gaia",
        "--label", "swarm-deploy.slug=develop",
        "--label", "swarm-deploy.drain-of=gaia-develop-blue",
        "nginx:1.27.2-bookworm",
        "sh", "-c", DRAIN_SCRIPT, "sh", "10", "gaia-develop-drain",
        "services/gaia-develop-blue_backend", "services/gaia-develop-blue_bot",
        "secrets/gaia_develop_pg_password_0",
    ]  # fmt: skip
    (prune,) = [
        a
        for step in the_plan.steps
        for a in step.actions
        if isinstance(a, Prune) and a.scope == "develop"
    ]
    assert drain.keep == prune.keep, "the drain job keeps what the new release uses"
    assert phases(the_plan).index("drain") > phases(the_plan).index("switch")
    assert "finish the drain" not in "\n".join(step.title for step in the_plan.steps)


def test_a_drain_handed_off_by_the_last_deploy_is_finished_before_the_colour_it_removes(
    project: pipeline.Project,
) -> None:
    """The new colour is the one the last deploy's drain job removes: it must be gone first."""
    facts = Facts(read=True, live_colour="green", drain="gaia-develop-blue")
    the_plan = usecases.plan(
        usecases.PlanRequest(
            project, "develop", RELEASE, environ=SENTINELS, facts=facts, host="local"
        )
    )
    assert the_plan.new_colour == "blue"
    (finish,) = [s for s in the_plan.steps if s.title.startswith("finish the drain")]
    assert finish.actions == (
        FinishDrain("local", "gaia-develop-drain", "gaia-develop-blue", 70.0),
    )
    assert the_plan.steps.index(finish) < phases(the_plan).index("migrate")


def test_a_new_nginx_config_is_tested_in_the_edge_image_before_anything_changes(
    project: pipeline.Project,
) -> None:
    the_plan = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, host="local")
    )
    # right after the files are rendered: before the shared stack, the databases, the edge
    assert phases(the_plan)[phases(the_plan).index("render") + 1] == "nginx"
    (step,) = [s for s in the_plan.steps if s.phase == "nginx"]
    (test,) = step.actions
    assert isinstance(test, NginxTest)
    files = render_branch(project, "develop")
    config = "gaia_develop_nginx_conf_" + fingerprint(files["nginx/nginx.conf"])[:10]
    # the very config the edge stack names: its deploy adopts it, prune removes it if unused
    assert f'name: "{config}"' in files["stacks/edge.yml"]
    assert test.create.argv == (
        "docker", "config", "create",
        "--label", "com.docker.stack.namespace=gaia-develop-edge",
        config, ".swarm-deploy/develop/nginx/nginx.conf",
    )  # fmt: skip
    assert test.create.done_if == "already exists"
    assert test.job.job == "gaia-develop-nginx-t"
    assert test.job.argv == (
        "docker", "service", "create",
        "--name", "gaia-develop-nginx-t",
        "--mode", "replicated-job",
        "--restart-condition", "none",
        "--detach",
        "--with-registry-auth",
        "--label", "swarm-deploy.app=gaia",
        "--label", "swarm-deploy.slug=develop",
        "--config", f"source={config},target=/etc/nginx/nginx.conf",
        "nginx:1.27.2-bookworm",
        "nginx", "-t",
    )  # fmt: skip


def test_an_unchanged_edge_is_neither_tested_nor_redeployed(project: pipeline.Project) -> None:
    first = usecases.plan(usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS))
    (edge_hash,) = [a.edge_hash for s in first.steps for a in s.actions if isinstance(a, Record)]
    facts = Facts(read=True, live_colour="blue", state={f"{LABEL}.edge-hash": edge_hash})
    again = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, facts=facts)
    )
    why = f"the edge records swarm-deploy.edge-hash={edge_hash[:12]}..., the hash of its files now"
    assert [
        (s.title, s.actions, s.skipped) for s in again.steps if s.phase in ("nginx", "edge")
    ] == [
        ("test the new nginx config of gaia-develop-edge with nginx -t", (), why),
        ("deploy the edge stack gaia-develop-edge", (), why),
    ]
    changed = Facts(read=True, live_colour="blue", state={f"{LABEL}.edge-hash": "older"})
    redeploy = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, facts=changed)
    )
    edge = [s for s in redeploy.steps if s.phase in ("nginx", "edge")]
    assert [(s.skipped, len(s.actions)) for s in edge] == [("", 1), ("", 2)]
    assert (
        edge[1].note
        == "its config changed (or it is new): its 2 nginx tasks restart one at a time, start-first"
    )


def test_secrets_that_exist_on_the_target_are_not_created_again(project: pipeline.Project) -> None:
    first = usecases.plan(usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS))
    existing = frozenset(
        a.argv[-2]
        for s in first.steps
        for a in s.actions
        if isinstance(a, Command) and a.stdin_secret
    )
    again = usecases.plan(
        usecases.PlanRequest(
            project,
            "develop",
            RELEASE,
            environ=SENTINELS,
            facts=Facts(read=True, live_colour="blue", existing_secrets=existing),
        )
    )
    created = [s for s in again.steps if s.title.startswith("create secret ")]
    assert sorted(s.title.removeprefix("create secret ") for s in created) == sorted(existing)
    assert {(s.actions, s.skipped) for s in created} == {
        ((), "it exists on the target, and its name carries its value's hash")
    }


def test_convergence_is_read_from_tasks_and_the_colour_waits_inside_the_gate(
    project: pipeline.Project,
) -> None:
    the_plan = usecases.plan(usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS))
    waits = [a for s in the_plan.steps for a in s.actions if isinstance(a, WaitConverged)]
    assert [w.stack for w in waits] == ["gaia-shared", "gaia-develop-edge"]
    (gate,) = [a for s in the_plan.steps for a in s.actions if isinstance(a, HealthGate)]
    assert gate.describe().startswith("(a) every blue task running, healthy where the image")


def test_unreadable_secrets_become_warnings_not_values(project: pipeline.Project) -> None:
    the_plan = usecases.plan(usecases.PlanRequest(project, "develop", RELEASE, environ={}))
    assert len(the_plan.warnings) == 6
    assert the_plan.warnings[0].startswith(
        "secret postgres_admin: value from $GAIA_POSTGRES_ADMIN_PASSWORD is not available"
    )


def test_fifty_branches_plan_offline_with_distinct_slugs(project: pipeline.Project) -> None:
    """Not a timing assertion: just that planning is pure and touches no engine."""
    plans = [
        usecases.plan(
            usecases.PlanRequest(project, f"feature/branch-{n}", RELEASE, environ=SENTINELS)
        )
        for n in range(50)
    ]
    assert len({p.branch.slug for p in plans}) == 50


def test_plan_json_lists_steps_with_argv(project: pipeline.Project) -> None:
    data = usecases.plan(
        usecases.PlanRequest(project, "feature-1", RELEASE, environ=SENTINELS)
    ).to_json()
    assert data["host"] == "feat1.gaia.example.com"
    assert data["slug"] == "feature-1"
    assert data["steps"][0]["actions"][0]["argv"][:2] == ["docker", "build"]
    assert json.loads(json.dumps(data)) == data


def test_migrations_run_with_the_new_image_and_the_service_wiring(
    project: pipeline.Project,
) -> None:
    the_plan = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, host="local")
    )
    (step,) = [s for s in the_plan.steps if s.phase == "migrate"]
    (migrate,) = step.actions
    assert isinstance(migrate, Migrate)
    pinned = Release(RELEASE, {"backend": "registry/backend@sha256:" + "a" * 64})
    argv = migrate.argv(pinned)
    assert argv[:10] == [
        "docker", "service", "create", "--name", "gaia-develop-migrate", "--mode",
        "replicated-job", "--restart-condition", "none", "--detach",
    ]  # fmt: skip
    # pulled from the registry with the deployer's credentials, like the colour's images
    assert argv[10] == "--with-registry-auth"
    assert argv[-4:] == ["registry/backend@sha256:" + "a" * 64, "python3", "/app/app.py", "migrate"]
    assert "PGDATABASE=gaia_develop_main" in argv
    assert "APP_COLOUR=blue" in argv
    assert "--network" in argv
    assert argv[argv.index("--network") + 1] == "gaia-develop"
    secrets = [argv[i + 1] for i, part in enumerate(argv) if part == "--secret"]
    assert any(s.startswith("source=gaia_develop_pg_password_") for s in secrets)
    assert "<backend image of this release>" in migrate.describe()


def test_published_images_are_migrated_and_a_rollback_is_not(project: pipeline.Project) -> None:
    """`deploy --image` (how the Dagger module deploys) builds nothing but migrates."""
    published = Release(
        RELEASE,
        {name: f"ghcr.io/acme/gaia-{name}@sha256:{'b' * 64}" for name in project.config.images},
    )
    deploy = phases(
        usecases.plan(
            usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, prebuilt=published)
        )
    )
    assert ("build" in deploy, "publish" in deploy, deploy.count("migrate")) == (False, False, 1)
    back = usecases.plan(
        usecases.PlanRequest(
            project, "develop", RELEASE, environ=SENTINELS, prebuilt=published, rollback=True
        )
    )
    assert "migrate" not in phases(back)


def test_without_a_registry_a_multi_node_target_is_refused(project: pipeline.Project) -> None:
    with pytest.raises(TargetError, match="swarm of 3 nodes"):
        usecases.plan(usecases.PlanRequest(
            project, "develop", RELEASE, environ=SENTINELS, transfer=True,
            facts=Facts(read=True, nodes=3),
        ))  # fmt: skip


def test_each_branch_gets_a_redis_user_confined_to_its_prefix(project: pipeline.Project) -> None:
    the_plan = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, host="local")
    )
    (step,) = [s for s in the_plan.steps if s.title.startswith("ensure Redis user")]
    assert step.title == "ensure Redis user gaia_develop for keys gaia:develop:*"
    (ensure,) = step.actions
    assert isinstance(ensure, EnsureData)
    assert (ensure.kind, ensure.service) == ("redis", "gaia-shared_redis")
    job = ensure.job
    secrets = [job.argv[i + 1] for i, part in enumerate(job.argv) if part == "--secret"]
    assert [re.sub(r"_[0-9a-f]{10},", "_<sha>,", s) for s in secrets] == [
        "source=gaia_shared_redis_admin_<sha>,target=redis_admin",
        "source=gaia_develop_redis_password_<sha>,target=redis_password",
    ]
    assert job.argv[-7:] == (
        "redis:7.4.0-bookworm",
        "sh", "-c", KINDS["redis"].ensure, "redis-job", "gaia_develop", "gaia:develop:",
    )  # fmt: skip


def test_each_branch_gets_a_mongo_user_of_its_own_databases(project: pipeline.Project) -> None:
    the_plan = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, host="local")
    )
    (step,) = [s for s in the_plan.steps if s.title.startswith("ensure MongoDB user")]
    assert step.title == "ensure MongoDB user gaia_develop with readWrite on gaia_develop_events"
    (ensure,) = step.actions
    assert isinstance(ensure, EnsureData)
    job = ensure.job
    secrets = [job.argv[i + 1] for i, part in enumerate(job.argv) if part == "--secret"]
    assert [re.sub(r"_[0-9a-f]{10},", "_<sha>,", s) for s in secrets] == [
        "source=gaia_shared_mongo_admin_<sha>,target=mongo_admin",
        "source=gaia_develop_mongo_password_<sha>,target=mongo_password",
    ]
    assert job.argv[-9:] == (
        "--env", "MONGO_HOST=gaia-shared_mongo",
        "mongo:7.0.14",
        "sh", "-c", KINDS["mongo"].shell, KINDS["mongo"].ensure,
        "gaia_develop", "gaia_develop_events",
    )  # fmt: skip


def test_a_secret_file_holding_only_a_newline_stops_the_plan(
    project: pipeline.Project, tmp_path: Path
) -> None:
    (tmp_path / "session").write_text("\n")
    secrets = {**project.config.secrets, "session_key": SecretSource("session_key", file="session")}
    cfg = replace(project.config, root=tmp_path, secrets=MappingProxyType(secrets))
    with pytest.raises(SecretValueError) as caught:
        usecases.plan(
            usecases.PlanRequest(
                pipeline.Project(cfg, project.templates), "develop", RELEASE, environ=SENTINELS
            )
        )
    assert str(caught.value) == (
        "1 secret value(s) cannot be used:\n"
        "  - session_key: value from file session holds only whitespace (1 byte)\n"
        "give each its real value (see secrets: in the config); a deploy would stop before "
        "changing anything"
    )


def test_a_derived_password_follows_its_unusable_admin_secret(project: pipeline.Project) -> None:
    branch = project.config.branch("develop")
    secrets = stack_secrets.resolve(
        project.config, branch, {**SENTINELS, "GAIA_POSTGRES_ADMIN_PASSWORD": ""}
    )
    assert [s.problem() for s in secrets.unresolved()] == [
        "value from $GAIA_POSTGRES_ADMIN_PASSWORD is empty",
        "value derived from postgres_admin ($GAIA_POSTGRES_ADMIN_PASSWORD) is empty",
    ]
    assert secrets.warnings() == ()


def live_after(the_plan: pipeline.Plan) -> Facts:
    """The facts a deploy of `the_plan` leaves on the target: the labels it records."""
    (record,) = [a for s in the_plan.steps for a in s.actions if isinstance(a, Record)]
    argv = record.argv(the_plan.release)
    labels = [argv[i + 1] for i, part in enumerate(argv) if part == "--label-add"]
    state = dict(label.split("=", 1) for label in labels)
    return Facts(read=True, live_colour=the_plan.new_colour, state=state)


def test_the_same_deploy_again_is_nothing_to_do(project: pipeline.Project) -> None:
    first = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, inputs="a1")
    )
    again = usecases.plan(
        usecases.PlanRequest(
            project, "develop", RELEASE, environ=SENTINELS, inputs="a1", facts=live_after(first)
        )
    )
    assert again.up_to_date
    assert again.steps == ()


@pytest.mark.parametrize(
    "change",
    [
        {"inputs": "b2"},  # the release name reused for other sources (--release v1 twice)
        {"environ": {**SENTINELS, "GAIA_SESSION_KEY": "rotated"}},  # a new secret value
        {"source_url": "https://github.com/acme/gaia"},  # another image label
    ],
    ids=["sources", "secret", "label"],
)
def test_the_same_release_name_with_other_content_is_deployed(
    project: pipeline.Project, change: dict[str, Any]
) -> None:
    """Was "already at <release>: nothing to do" while the old code and secrets served."""
    first = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, inputs="a1")
    )
    asked: dict[str, Any] = {"environ": SENTINELS, "inputs": "a1", **change}
    again = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, facts=live_after(first), **asked)
    )
    assert not again.up_to_date
    assert again.new_colour == "green"


def test_a_release_recorded_without_a_fingerprint_is_deployed_again(
    project: pipeline.Project,
) -> None:
    """What swarm-deploy recorded before: the release name only."""
    facts = Facts(read=True, live_colour="blue", state={"swarm-deploy.release": RELEASE})
    again = usecases.plan(
        usecases.PlanRequest(project, "develop", RELEASE, environ=SENTINELS, facts=facts)
    )
    assert not again.up_to_date


LOCAL = pipeline.Project.load(ROOT / "swarm-deploy.local.yml")


@pytest.mark.parametrize(
    ("project_of", "branch", "target", "urls"),
    [
        # a port rule without Traefik: https://develop.gaia.localhost answered nothing
        (LOCAL, "develop", "local", ("http://127.0.0.1:18080",)),
        (LOCAL, "develop", "ssh://root@vm1.example.com:2222", ("http://vm1.example.com:18080",)),
        (LOCAL, "feature/y", "local", ()),
        (None, "develop", "local", ("https://develop.gaia.example.com",)),
    ],
)
def test_the_plan_shows_the_url_that_answers(
    project: pipeline.Project,
    project_of: pipeline.Project | None,
    branch: str,
    target: str,
    urls: tuple[str, ...],
) -> None:
    the_plan = usecases.plan(
        usecases.PlanRequest(project_of or project, branch, RELEASE, environ={}, host=target)
    )
    assert the_plan.urls == urls
    lines = [text for _, text in plan_lines(the_plan)]
    assert lines[1] == f"  host     {the_plan.branch.host}"
    assert lines[2] == f"  url      {' and '.join(urls) or NO_URL}"
    assert the_plan.to_json()["urls"] == list(urls)


def test_with_traefik_and_a_port_both_urls_answer(project: pipeline.Project) -> None:
    rules = (replace(project.config.branches[1], port=18080), *project.config.branches)
    cfg = replace(project.config, branches=rules)
    the_plan = usecases.plan(
        usecases.PlanRequest(pipeline.Project(cfg, project.templates), "develop", RELEASE)
    )
    assert the_plan.urls == (
        "http://vm1.gaia.example.com:18080",
        "https://develop.gaia.example.com",
    )


def test_the_https_url_names_the_port_traefik_publishes(project: pipeline.Project) -> None:
    traefik = replace(project.config.shared["traefik"], ports=TraefikPorts(http=18480, https=18443))
    cfg = replace(project.config, shared={**project.config.shared, "traefik": traefik})
    the_plan = usecases.plan(
        usecases.PlanRequest(pipeline.Project(cfg, project.templates), "develop", RELEASE)
    )
    assert the_plan.urls == ("https://develop.gaia.example.com:18443",)


def test_the_edge_step_says_how_the_branch_nginx_tasks_restart() -> None:
    """As stacks/edge.yml's update_config has them: stop-first only on a host-mode port."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["branches"] = [{"match": "develop", "port": 18080}, {"match": "feature/*"}]
    behind_traefik = config.parse(yaml.safe_dump(data))
    del data["shared"]["traefik"]
    alone = config.parse(yaml.safe_dump(data))
    shown = {
        (name, branch): deploy_steps.edge_update(cfg, cfg.branch(branch))
        for name, cfg in (("traefik", behind_traefik), ("alone", alone))
        for branch in ("develop", "feature/x")
    }
    assert shown == {
        ("traefik", "develop"): "nginx restarts stop-first, ~0.6 s of 503",
        ("traefik", "feature/x"): "its 2 nginx tasks restart one at a time, start-first",
        ("alone", "develop"): "nginx restarts stop-first, ~0.6 s of 503",
        ("alone", "feature/x"): "nginx restarts start-first",
    }
