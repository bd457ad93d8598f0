"""What a deploy skips: each step whose work the facts on the Swarm show done (a secret
that exists, the edge's files by their recorded hash, the shared stack by its services'
definition labels, each data job by the version the edge records), listed as
"unchanged, skipped" with the version that matched; and each reason to run it again."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest

from swarm_deploy import pipeline, stack_secrets, usecases
from swarm_deploy.claims import RunningShared
from swarm_deploy.plan import (
    SKIPPED,
    EnsureData,
    Facts,
    Plan,
    Record,
    Step,
    data_version,
    plan_lines,
)
from swarm_deploy.render import Release
from tests.render_helpers import RELEASE, SENTINELS

EXISTS = "it exists on the target, and its name carries its value's hash"
DATA_TITLES = {
    "postgres": "ensure PostgreSQL role gaia_develop and its databases",
    "mongo": "ensure MongoDB user gaia_develop with readWrite on gaia_develop_events",
    "redis": "ensure Redis user gaia_develop for keys gaia:develop:*",
}


def definitions(
    project: pipeline.Project, environ: Mapping[str, str] = SENTINELS
) -> dict[str, str]:
    branch = project.config.branch("develop")
    secrets = stack_secrets.resolve(project.config, branch, environ)
    rendered = project.render(branch, Release.tagged(project.config, RELEASE), secrets, None)
    return dict(rendered.shared_definitions)


def running(project: pipeline.Project, ids: str = "1") -> dict[str, RunningShared]:
    """The shared stack as the plan renders it, each service settled, with an ID each."""
    return {
        kind: RunningShared(definition, project.config.shared[kind].image, id=f"{kind}-{ids}")
        for kind, definition in definitions(project).items()
    }


def plan(project: pipeline.Project, facts: Facts = Facts(), **asked: Any) -> Plan:
    wanted: dict[str, Any] = {"environ": SENTINELS, **asked}
    return usecases.plan(usecases.PlanRequest(project, "develop", RELEASE, facts=facts, **wanted))


def the_record(the_plan: Plan) -> Record:
    (record,) = [a for s in the_plan.steps for a in s.actions if isinstance(a, Record)]
    return record


def recorded(the_plan: Plan, ensured: Mapping[str, str] = MappingProxyType({})) -> dict[str, str]:
    """The labels the plan's record step writes, given what its data jobs ensured."""
    argv = the_record(the_plan).argv(the_plan.release, ensured)
    return dict(argv[i + 1].split("=", 1) for i, part in enumerate(argv) if part == "--label-add")


def ran(the_plan: Plan, shared: Mapping[str, RunningShared]) -> dict[str, str]:
    """What each data job the plan runs ensures, against the services `shared` names."""
    return {
        a.kind: data_version(a.inputs, shared[a.kind].id)
        for s in the_plan.steps
        for a in s.actions
        if isinstance(a, EnsureData)
    }


def deployed(project: pipeline.Project, **asked: Any) -> Facts:
    """The target after a deploy of develop, read by the next one: its secrets, the
    shared stack as rendered, the labels the deploy recorded (the release's inputs set
    apart, so the next plan is no "nothing to do")."""
    shared = running(project)
    before = Facts(read=True, shared_stack=shared)
    first = plan(project, before, inputs="first", **asked)
    secrets = frozenset(
        a.argv[-2] for s in first.steps for a in s.actions if getattr(a, "stdin_secret", None)
    )
    return replace(
        before,
        live_colour=first.new_colour,
        state=recorded(first, ran(first, shared)),
        existing_secrets=secrets,
    )


def by_title(the_plan: Plan) -> dict[str, Step]:
    return {re.sub(r"_[0-9a-f]{10}$", "", step.title): step for step in the_plan.steps}


def skipped(the_plan: Plan) -> dict[str, str]:
    return {title: step.skipped for title, step in by_title(the_plan).items() if step.skipped}


def test_a_second_deploy_skips_what_the_first_ensured_and_says_which_version_matched(
    project: pipeline.Project,
) -> None:
    facts = deployed(project)
    again = plan(project, facts)
    versions = {k: v for k, v in facts.state.items() if k.startswith("swarm-deploy.data.")}
    assert sorted(versions) == [
        f"swarm-deploy.data.{kind}" for kind in ("mongo", "postgres", "redis")
    ]
    assert all(re.fullmatch(r"[0-9a-f]{12}", v) for v in versions.values())
    edge = facts.state["swarm-deploy.edge-hash"][:12]
    shown = ", ".join(f"{kind}={d}" for kind, d in sorted(definitions(project).items()))
    assert skipped(again) == {
        "test the new nginx config of gaia-develop-edge with nginx -t": (
            f"the edge records swarm-deploy.edge-hash={edge}..., the hash of its files now"
        ),
        **{
            f"create secret gaia_develop_{key}": EXISTS
            for key in (
                "pg_password",
                "mongo_password",
                "redis_password",
                "session_key",
                "telegram_token",
            )
        },
        **{
            f"create secret gaia_shared_{key}_admin": EXISTS
            for key in ("postgres", "mongo", "redis", "grafana")
        },
        "ensure the shared stack gaia-shared": (
            "each service runs the definition rendered now, every task up, and no other runs "
            f"(swarm-deploy.definition: {shown})"
        ),
        **{
            title: (
                f"the edge records {key}={versions[key]}: this job ran against this very "
                f"gaia-shared_{kind}"
            )
            for kind, title in DATA_TITLES.items()
            for key in [f"swarm-deploy.data.{kind}"]
        },
        "deploy the edge stack gaia-develop-edge": (
            f"the edge records swarm-deploy.edge-hash={edge}..., the hash of its files now"
        ),
        "remove shared secrets and configs nothing uses any more": (
            "this deploy creates no shared secret and deploys no shared stack: nothing "
            "shared is left unused by it"
        ),
    }
    assert [s.phase for s in again.steps if not s.skipped] == [
        "build", "build", "build", "publish", "publish", "publish", "publish", "render",
        "migrate", "colour", "gate", "switch", "record", "singletons", "drain", "prune",
    ]  # fmt: skip
    assert all(step.actions == () for step in again.steps if step.skipped)
    # recorded again as they are, for the deploy after this one
    assert {
        k: v for k, v in recorded(again).items() if k.startswith("swarm-deploy.data.")
    } == versions


def test_a_skipped_step_is_listed_with_why_and_no_command(project: pipeline.Project) -> None:
    again = plan(project, deployed(project))
    lines = [text for _, text in plan_lines(again)]
    number = next(
        n for n, s in enumerate(again.steps, start=1) if s.title.startswith("ensure Redis")
    )
    version = again.facts.state["swarm-deploy.data.redis"]
    at = lines.index(
        f"{number:>3}. [databases] ensure Redis user gaia_develop for keys gaia:develop:*"
    )
    assert lines[at + 1 : at + 3] == [
        f"       {SKIPPED}: the edge records swarm-deploy.data.redis={version}: this job ran "
        "against this very gaia-shared_redis",
        "",
    ]
    (step,) = [s for s in again.to_json()["steps"] if s["title"].startswith("ensure Redis")]
    assert (step["skipped"], step["actions"]) == (lines[at + 1].split(": ", 1)[1], [])


def data_steps(the_plan: Plan) -> dict[str, bool]:
    """Each data job's title -> whether it runs."""
    return {
        title: not step.skipped
        for title, step in by_title(the_plan).items()
        if title in DATA_TITLES.values()
    }


def runs(*kinds: str) -> dict[str, bool]:
    return {title: kind in kinds for kind, title in DATA_TITLES.items()}


def test_each_input_of_a_data_job_runs_it_again(project: pipeline.Project) -> None:
    facts = deployed(project)
    assert data_steps(plan(project, facts)) == runs()
    # the branch's password: a new admin value derives a new one (and the admin's name)
    rotated = {**SENTINELS, "GAIA_REDIS_ADMIN_PASSWORD": "rotated"}
    assert data_steps(plan(project, facts, environ=rotated, update_shared=True)) == runs("redis")
    # the shared service removed and created again: another ID, whatever it holds
    recreated = {
        **facts.shared_stack,
        "postgres": replace(facts.shared_stack["postgres"], id="new"),
    }
    assert data_steps(plan(project, replace(facts, shared_stack=recreated))) == runs("postgres")
    # no version recorded (a deploy before this one, or one that stopped before the record)
    unrecorded = {k: v for k, v in facts.state.items() if k != "swarm-deploy.data.mongo"}
    assert data_steps(plan(project, replace(facts, state=unrecorded))) == runs("mongo")
    # --force runs every one, saying which version it would have skipped by
    forced = plan(project, facts, force=True)
    assert data_steps(forced) == runs("postgres", "mongo", "redis")
    step = by_title(forced)[DATA_TITLES["postgres"]]
    assert step.note.endswith(
        "; run with --force, although the edge records swarm-deploy.data.postgres="
        f"{facts.state['swarm-deploy.data.postgres']}: this job ran against this very "
        "gaia-shared_postgres"
    )


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"image": "postgres:17.0-bookworm"}, "postgres"),  # the job runs the service's image
        ({"databases": ("main", "audit")}, "postgres"),
    ],
    ids=["image", "databases"],
)
def test_the_config_of_a_data_kind_runs_its_job_again(
    project: pipeline.Project, change: dict[str, Any], kind: str
) -> None:
    facts = deployed(project)
    shared = {**project.config.shared, kind: replace(project.config.shared[kind], **change)}
    changed = pipeline.Project(replace(project.config, shared=shared), project.templates)
    # deployed from a branch that may change the shared stack: that is what runs now
    now = definitions(changed)
    shared = {
        k: replace(v, definition=now[k], image=changed.config.shared[k].image)
        for k, v in facts.shared_stack.items()
    }
    facts = replace(facts, shared_stack=shared)
    assert data_steps(plan(changed, facts)) == runs(kind)


def shared_step(the_plan: Plan) -> Step:
    return by_title(the_plan)["ensure the shared stack gaia-shared"]


@pytest.mark.parametrize(
    "change",
    [
        lambda s: {**s, "redis": replace(s["redis"], definition="0123456789ab")},
        lambda s: {**s, "redis": replace(s["redis"], definition=None)},  # before labels
        lambda s: {**s, "redis": replace(s["redis"], settled=False)},
        lambda s: {k: v for k, v in s.items() if k != "loki"},
        lambda s: {**s, "extra": RunningShared("0123456789ab", "extra:1", id="extra-1")},
    ],
    ids=["definition", "unlabelled", "unsettled", "missing", "extra"],
)
def test_the_shared_stack_is_deployed_unless_it_runs_exactly_as_rendered(
    project: pipeline.Project, change: Any
) -> None:
    facts = deployed(project)
    assert shared_step(plan(project, facts)).skipped
    changed = plan(
        project, replace(facts, shared_stack=change(dict(facts.shared_stack))), update_shared=True
    )
    step = shared_step(changed)
    assert step.skipped == ""
    assert step.actions[0].describe() == (
        "docker --host ssh://deploy@vm1.gaia.example.com stack deploy --compose-file "
        ".swarm-deploy/develop/stacks/shared.yml --with-registry-auth --resolve-image always "
        "--prune --detach=true gaia-shared"
    )


def test_force_deploys_the_shared_stack_and_the_edge_and_the_secrets_stay_skipped(
    project: pipeline.Project,
) -> None:
    forced = plan(project, deployed(project), force=True)
    assert sorted(skipped(forced)) == sorted(
        [
            f"create secret gaia_develop_{k}"
            for k in (
                "pg_password",
                "mongo_password",
                "redis_password",
                "session_key",
                "telegram_token",
            )
        ]
        + [
            f"create secret gaia_shared_{k}_admin"
            for k in ("postgres", "mongo", "redis", "grafana")
        ]
    )
    assert shared_step(forced).note.endswith(
        "; run with --force, although each service runs the definition rendered now, every "
        "task up, and no other runs (swarm-deploy.definition: "
        + ", ".join(f"{k}={d}" for k, d in sorted(definitions(project).items()))
        + ")"
    )


def test_a_rollback_skips_what_a_deploy_skips(project: pipeline.Project) -> None:
    """A rollback always deploys (it used --force for that), but reruns nothing needlessly."""
    published = Release(
        RELEASE,
        {name: f"ghcr.io/acme/gaia-{name}@sha256:{'b' * 64}" for name in project.config.images},
    )
    back = plan(project, deployed(project), prebuilt=published, rollback=True)
    assert not back.up_to_date
    assert data_steps(back) == runs()
    assert shared_step(back).skipped


def test_an_offline_plan_runs_everything_and_says_when_a_deploy_skips(
    project: pipeline.Project,
) -> None:
    offline = plan(project)
    assert skipped(offline) == {}
    notes = {title: step.note for title, step in by_title(offline).items()}
    assert notes[DATA_TITLES["redis"]] == (
        "a one-shot job on the shared network; the user can touch no other branch's keys and "
        "run no @dangerous command (FLUSHALL, KEYS, CONFIG, ...); skipped when the edge "
        "records the version it has now"
    )
    assert (
        "; checked against what runs when the deploy starts: skipped when every service "
        "runs its rendered definition" in notes["ensure the shared stack gaia-shared"]
    )
    assert (
        notes["create secret gaia_develop_session_key"]
        == "value from $GAIA_SESSION_KEY; skipped if it exists"
    )


def test_the_record_keeps_the_versions_of_skipped_jobs_and_writes_those_that_ran(
    project: pipeline.Project,
) -> None:
    facts = deployed(project)
    stale = {**facts.state, "swarm-deploy.data.mysql": "0123456789ab"}
    recreated = {**facts.shared_stack, "redis": replace(facts.shared_stack["redis"], id="new")}
    again = plan(project, replace(facts, state=stale, shared_stack=recreated))
    labels = recorded(again, {"redis": "fedcba987654"})
    assert {k: v for k, v in labels.items() if k.startswith("swarm-deploy.data.")} == {
        "swarm-deploy.data.postgres": facts.state["swarm-deploy.data.postgres"],
        "swarm-deploy.data.mongo": facts.state["swarm-deploy.data.mongo"],
        "swarm-deploy.data.redis": "fedcba987654",
    }
    argv = the_record(again).argv(again.release)
    assert argv[argv.index("--label-rm") + 1] == "swarm-deploy.data.mysql"
