"""What a deploy may claim on a shared target: its host, and changes to the shared stack.

The facts are what `read_facts` reads from the Swarm (tests/engine proves the reading);
here, the decisions, through the one path a deploy takes (`usecases.plan`).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from swarm_deploy import claims, config, pipeline, usecases
from swarm_deploy.claims import OtherBranch, RunningShared
from swarm_deploy.errors import HostConflictError, SharedStackError
from swarm_deploy.plan import SHARED, Facts, Record
from tests.conftest import EXAMPLE_CONFIG
from tests.render_helpers import RELEASE, SENTINELS


@pytest.fixture(scope="module")
def running(project: pipeline.Project) -> dict[str, RunningShared]:
    """The shared stack as develop's config renders it, as if it ran."""
    files = project.render(
        project.config.branch("develop"),
        pipeline.release(project.config, RELEASE),
        pipeline.stack_secrets.resolve(project.config, project.config.branch("develop"), SENTINELS),
        None,
    )
    return {
        kind: RunningShared(definition, project.config.shared[kind].image)
        for kind, definition in files.shared_definitions.items()
    }


def plan(project: pipeline.Project, branch: str, facts: Facts, **options: bool) -> pipeline.Plan:
    return usecases.plan(
        usecases.PlanRequest(project, branch, RELEASE, environ=SENTINELS, facts=facts, **options)
    )


def with_shared(project: pipeline.Project, **changes: str | None) -> pipeline.Project:
    """The example config with shared services given another image, or removed (None)
    together with every use of them: what a dependency-update branch carries."""
    example = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    for kind, image in changes.items():
        if image is None:
            del example["shared"][kind]
            for service in example["services"].values():
                service["uses"] = [k for k in service.get("uses", []) if k != kind]
        else:
            example["shared"][kind]["image"] = image
    return replace(project, config=config.parse(yaml.safe_dump(example)))


def test_a_branch_is_refused_the_host_another_live_branch_holds(
    project: pipeline.Project,
) -> None:
    holder = OtherBranch("feature/www", "feature-login-2c7f1a.gaia.example.com", frozenset())
    login = project.config.branch("feature/login")
    facts = Facts(read=True, others=(replace(holder, host=login.host),))
    with pytest.raises(HostConflictError) as caught:
        plan(project, "feature/login", facts)
    assert str(caught.value) == (
        f"branch 'feature/login' would be served at {login.host}, which branch "
        "'feature/www' holds on ssh://deploy@vm1.gaia.example.com; remove that branch first "
        "(`swarm-deploy destroy --branch feature/www`) or give rule 'feature/*' another host"
    )
    # its own edge, read back, is not another holder
    itself = OtherBranch("feature/login", login.host, frozenset())
    assert plan(project, "feature/login", Facts(read=True, others=(itself,))).steps


def test_what_the_shared_stack_runs_unchanged_is_no_change(
    project: pipeline.Project, running: dict[str, RunningShared]
) -> None:
    facts = Facts(read=True, shared_stack=running)
    the_plan = plan(project, "feature/login", facts)
    (shared,) = [s for s in the_plan.steps if s.title.startswith("ensure the shared stack")]
    assert shared.phase == SHARED
    assert "; what runs already matches" in shared.note


def test_a_branch_that_may_not_change_the_shared_stack_is_refused_with_the_difference(
    project: pipeline.Project, running: dict[str, RunningShared]
) -> None:
    bumped = with_shared(project, postgres="postgres:17.0-bookworm", mongo=None)
    facts = Facts(read=True, shared_stack=running)
    with pytest.raises(SharedStackError) as caught:
        plan(bumped, "renovate/postgres-17", facts)
    assert str(caught.value) == (
        "gaia-shared runs differently from what branch 'renovate/postgres-17' would deploy, "
        "and branches of rule 'main' may change it (shared: true):\n"
        "  mongo: removed (runs mongo:7.0.14)\n"
        "  postgres: image postgres:16.4-bookworm -> postgres:17.0-bookworm\n"
        "next: deploy this change from such a branch, make this branch's shared: match what "
        "runs, or pass --update-shared to change it for every branch"
    )


def test_the_production_branch_or_the_flag_may_change_it_and_the_plan_says_how(
    project: pipeline.Project, running: dict[str, RunningShared]
) -> None:
    bumped = with_shared(project, postgres="postgres:17.0-bookworm")
    facts = Facts(read=True, shared_stack=running)
    for branch, options in (("main", {}), ("develop", {"update_shared": True})):
        the_plan = plan(bumped, branch, facts, **options)
        (shared,) = [s for s in the_plan.steps if s.title.startswith("ensure the shared stack")]
        assert "; postgres: image postgres:16.4-bookworm -> postgres:17.0-bookworm" in shared.note


def test_a_shared_service_another_branch_uses_is_never_removed(
    project: pipeline.Project, running: dict[str, RunningShared]
) -> None:
    without_mongo = with_shared(project, mongo=None)
    users = (
        OtherBranch("develop", "develop.gaia.example.com", frozenset({"postgres", "mongo"})),
        # deployed before uses were recorded: it may use any data service
        OtherBranch("feature-1", "feat1.gaia.example.com", None),
        OtherBranch("feature-2", "feat2.gaia.example.com", frozenset({"redis"})),
    )
    facts = Facts(read=True, shared_stack=running, others=users)
    with pytest.raises(SharedStackError) as caught:
        plan(without_mongo, "main", facts, update_shared=True)
    assert str(caught.value) == (
        "this deploy would remove from gaia-shared what other branches still use: mongo by "
        "develop, feature-1; keep those services in shared: until no branch uses them "
        "(`swarm-deploy destroy` the branches, or deploy them without the service)"
    )
    # Loki serves no branch: the production branch may remove it
    assert plan(with_shared(project, loki=None, promtail=None), "main", facts).steps


def test_where_no_shared_stack_runs_any_branch_creates_it(project: pipeline.Project) -> None:
    the_plan = plan(project, "feature/login", Facts(read=True))
    (shared,) = [s for s in the_plan.steps if s.title.startswith("ensure the shared stack")]
    assert "; it does not run yet: this creates it" in shared.note


def test_a_service_deployed_before_definitions_were_recorded_is_compared_by_image(
    project: pipeline.Project, running: dict[str, RunningShared]
) -> None:
    unlabelled = {kind: replace(service, definition=None) for kind, service in running.items()}
    assert claims.shared_changes(project.config, dict.fromkeys(running, "x"), unlabelled) == []
    changed = dict(unlabelled, redis=RunningShared(None, "redis:7.2.0-bookworm"))
    assert claims.shared_changes(project.config, dict.fromkeys(running, "x"), changed) == [
        "redis: image redis:7.2.0-bookworm -> redis:7.4.0-bookworm"
    ]


def test_the_record_step_labels_the_host_and_the_shared_services_the_branch_uses(
    project: pipeline.Project,
) -> None:
    the_plan = plan(project, "develop", Facts(read=True))
    (record,) = [a for s in the_plan.steps for a in s.actions if isinstance(a, Record)]
    argv = record.argv(the_plan.release)
    assert "swarm-deploy.host=develop.gaia.example.com" in argv
    assert "swarm-deploy.uses=postgres,mongo,redis,traefik" in argv


def mounting_secrets(
    project: pipeline.Project, running: dict[str, RunningShared]
) -> dict[str, RunningShared]:
    """`running`, each service mounting its admin secret of the sentinel values."""
    secrets = pipeline.stack_secrets.resolve(
        project.config, project.config.branch("develop"), SENTINELS
    ).shared
    return {
        kind: replace(
            now,
            secrets=frozenset(
                {secrets[key].swarm_name}
                if (key := project.config.shared[kind].admin_password)
                else set()
            ),
        )
        for kind, now in running.items()
    }


def test_a_checkout_with_another_shared_secret_value_never_rotates_it_silently(
    project: pipeline.Project, running: dict[str, RunningShared]
) -> None:
    """A secret value comes from the deployer's environment, not from git: a checkout of
    any branch, the production one too, whose value differs from what runs would rotate
    it for every branch. Only --update-shared does, and the plan says so."""
    facts = Facts(read=True, shared_stack=mounting_secrets(project, running))
    stale = {**SENTINELS, "GAIA_REDIS_ADMIN_PASSWORD": "an-older-value"}
    for branch in ("main", "feature/login"):
        with pytest.raises(SharedStackError) as caught:
            usecases.plan(
                usecases.PlanRequest(project, branch, RELEASE, environ=stale, facts=facts)
            )
        assert str(caught.value) == (
            f"deploying {branch!r} would rotate shared secrets of gaia-shared for every branch "
            "(and every branch's credentials derived from them):\n"
            "  redis_admin: the value from $GAIA_REDIS_ADMIN_PASSWORD is not the one redis "
            "runs with\n"
            "next: if this deploy's value is stale, give it the value the target runs with; to "
            "rotate on purpose, pass --update-shared"
        )
    the_plan = usecases.plan(
        usecases.PlanRequest(
            project, "main", RELEASE, environ=stale, facts=facts, update_shared=True
        )
    )
    (shared,) = [s for s in the_plan.steps if s.title.startswith("ensure the shared stack")]
    # the definition names the secret by its key: only the mounted name tells the value
    assert shared.note.endswith(
        "are not restarted; secret redis_admin: rotated (redis runs with another value; every "
        "branch's credentials derived from it follow at their next deploy)"
    )
    same = usecases.plan(
        usecases.PlanRequest(project, "feature/login", RELEASE, environ=SENTINELS, facts=facts)
    )
    assert not same.up_to_date


def test_what_changed_in_the_shared_stack_while_a_deploy_waited() -> None:
    """Checked when a deploy takes the shared lock: the plan was judged against the first."""
    before = {
        "postgres": RunningShared("a", "postgres:16", frozenset({"pg_1"})),
        "redis": RunningShared("b", "redis:7", frozenset({"redis_1"})),
        "loki": RunningShared("c", "loki:3"),
    }
    after = {
        "postgres": RunningShared("a", "postgres:17", frozenset({"pg_1"})),
        "redis": RunningShared("b2", "redis:7", frozenset({"redis_2"})),
        "mongo": RunningShared("d", "mongo:7"),
    }
    assert claims.changed_since(before, before) == []
    assert claims.changed_since(before, after) == [
        "loki: removed",
        "mongo: added (runs mongo:7)",
        "postgres: image postgres:16 -> postgres:17",
        "redis: runs with other secrets (a shared secret was rotated)",
    ]
