"""Which branches are stale, and the order a branch is taken apart in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from swarm_deploy import pipeline
from swarm_deploy.datakinds import KINDS
from swarm_deploy.destroy import Deployed, Remains, destroy_plan, read_remains, stale
from swarm_deploy.errors import TargetError
from swarm_deploy.plan import Command, RemoveIfPresent, RunJob, WaitGone
from tests.unit.swarm_sim import Sim, SimExecutor, SimSwarm

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def test_stale_branches_are_old_and_unprotected(project: pipeline.Project) -> None:
    deployed = [
        Deployed("main", datetime(2026, 1, 1, tzinfo=UTC)),  # production: protected
        Deployed("develop", datetime(2026, 11, 26, tzinfo=UTC)),  # recent
        Deployed("feature/old", datetime(2026, 10, 1, tzinfo=UTC)),
        Deployed("hotfix/gone-rule", datetime(2026, 11, 1, tzinfo=UTC)),  # no rule any more
        Deployed("feature/never-recorded", None),
    ]
    assert stale(project.config, deployed, 14, NOW) == [
        "feature/old",
        "hotfix/gone-rule",
        "feature/never-recorded",
    ]


def test_colours_go_first_then_the_edge_that_owns_the_network(project: pipeline.Project) -> None:
    names = project.config.names("develop")
    remains = Remains(
        ("gaia-develop-green", "gaia-develop-edge"),
        ("gaia_develop_session_key_0123456789",),
        {
            "postgres": "gaia_shared_postgres_admin_0123456789",
            "mongo": "gaia_shared_mongo_admin_0123456789",
            "redis": "gaia_shared_redis_admin_0123456789",
        },
    )
    steps = destroy_plan(project.config, names, "local", remains, drop_data=True)
    assert [s.title for s in steps] == [
        "remove gaia-develop-green",
        "remove gaia-develop-edge",
        "remove the network gaia-develop",
        "remove 1 secrets of develop",
        "drop the databases and role of develop",
        "drop the MongoDB databases gaia_develop_events and user gaia_develop",
        "drop the Redis keys gaia:develop:* and user gaia_develop",
    ]
    first = steps[0].actions
    assert first[0] == Command(("docker", "stack", "rm", "gaia-develop-green"))
    assert isinstance(first[1], WaitGone)
    assert steps[2].actions[0] == RemoveIfPresent("local", "network", ("gaia-develop",))
    job = steps[4].actions[0]
    assert isinstance(job, RunJob)
    assert "--secret" in job.argv
    assert "source=gaia_shared_postgres_admin_0123456789,target=postgres_admin" in job.argv
    assert job.argv[-2:] == ("gaia_develop", "gaia_develop_main")
    mongo = steps[5].actions[0]
    assert isinstance(mongo, RunJob)
    assert mongo.argv[-9:] == (
        "--env", "MONGO_HOST=gaia-shared_mongo",
        "mongo:7.0.14",
        "sh", "-c", KINDS["mongo"].shell, KINDS["mongo"].drop,
        "gaia_develop", "gaia_develop_events",
    )  # fmt: skip
    redis = steps[6].actions[0]
    assert isinstance(redis, RunJob)
    assert redis.argv == (
        "docker", "service", "create",
        "--name", "gaia-develop-redis",
        "--mode", "replicated-job",
        "--restart-condition", "none",
        "--detach",
        "--with-registry-auth",
        "--label", "swarm-deploy.app=gaia",
        "--label", "swarm-deploy.slug=develop",
        "--network", "gaia-shared",
        "--secret", "source=gaia_shared_redis_admin_0123456789,target=redis_admin",
        "--env", "REDIS_HOST=gaia-shared_redis",
        "redis:7.4.0-bookworm",
        "sh", "-c", KINDS["redis"].drop, "redis-job", "gaia_develop", "gaia:develop:",
    )  # fmt: skip


def test_drop_data_needs_every_admin_secret_on_the_target(project: pipeline.Project) -> None:
    names = project.config.names("develop")
    remains = Remains((), (), {"postgres": "gaia_shared_postgres_admin_0123456789"})
    with pytest.raises(TargetError, match="the admin secret of the shared mongo, redis is not on"):
        destroy_plan(project.config, names, "local", remains, drop_data=True)


def test_without_drop_data_the_databases_stay(project: pipeline.Project) -> None:
    names = project.config.names("develop")
    remains = Remains((), (), volumes=("gaia-develop-edge-live",))
    steps = destroy_plan(project.config, names, "local", remains, drop_data=False)
    assert [s.phase for s in steps] == ["network"]


def test_a_branch_that_left_nothing_on_the_target_has_nothing_to_remove(
    project: pipeline.Project,
) -> None:
    """fix/typo matches no rule: it was never deployed, and its deletion changes nothing."""
    names = project.config.names("fix/typo")
    assert destroy_plan(project.config, names, "local", Remains((), ()), drop_data=False) == []


def test_a_branch_whose_rule_is_gone_is_found_by_its_slug(project: pipeline.Project) -> None:
    """Stack names come from the slug, not the rule: what hotfix/old left is removed."""
    assert project.config.rule("hotfix/old") is None
    names = project.config.names("hotfix/old")
    remains = Remains(
        ("gaia-hotfix-old-c02769-blue", "gaia-hotfix-old-c02769-edge"),
        ("gaia_hotfix-old-c02769_session_key_0123456789",),
    )
    steps = destroy_plan(project.config, names, "local", remains, drop_data=False)
    assert names.slug == "hotfix-old-c02769"
    assert [s.title for s in steps] == [
        "remove gaia-hotfix-old-c02769-blue",
        "remove gaia-hotfix-old-c02769-edge",
        "remove the network gaia-hotfix-old-c02769",
        "remove 1 secrets of hotfix-old-c02769",
    ]


def test_what_a_branch_left_is_read_from_the_target(project: pipeline.Project) -> None:
    """Its stacks and secrets (not another branch's), and the newest admin secret of
    each shared data service; the edge's volume is on a node this sim has none of."""
    sim = Sim()
    executor = SimExecutor(sim, project.config.root)

    def secret(name: str, **labels: str) -> None:
        flags = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
        executor.run(["docker", "secret", "create", *flags, name, "-"], stdin=b"x")
        sim.advance(60)

    app, shared = {"swarm-deploy.app": "gaia"}, {"swarm-deploy.slug": "shared"}
    for kind in ("postgres", "mongo", "redis"):
        for version in ("old", "new"):
            key = {"swarm-deploy.key": f"{kind}_admin"}
            secret(f"gaia_shared_{kind}_admin_{version}", **app, **shared, **key)
    secret("gaia_develop_session_key_1", **app, **{"swarm-deploy.slug": "develop"})
    secret("gaia_feature-x_session_key_1", **app, **{"swarm-deploy.slug": "feature-x"})
    sim.run_service("gaia-develop-green", "backend", "backend:1", {})
    sim.run_service("gaia-develop-edge", "nginx", "nginx:1", {})
    sim.run_service("gaia-feature-x-blue", "backend", "backend:1", {})
    names = project.config.names("develop")
    assert read_remains(SimSwarm(sim, "local"), project.config, names) == Remains(
        stacks=("gaia-develop-green", "gaia-develop-edge"),
        secrets=("gaia_develop_session_key_1",),
        admin_secrets={
            kind: f"gaia_shared_{kind}_admin_new" for kind in ("postgres", "mongo", "redis")
        },
    )


def test_a_drain_job_left_by_a_deploy_is_stopped_before_the_colours_go(
    project: pipeline.Project,
) -> None:
    """Else it could remove, seconds later, a colour a deploy right after destroy starts."""
    names = project.config.names("develop")
    remains = Remains(
        ("gaia-develop-blue", "gaia-develop-green", "gaia-develop-edge"), (),
        drain_job="gaia-develop-drain",
    )  # fmt: skip
    steps = destroy_plan(project.config, names, "local", remains, drop_data=False)
    assert [s.title for s in steps][:2] == [
        "stop gaia-develop-drain, the last deploy's drain",
        "remove gaia-develop-blue, gaia-develop-green",
    ]
    assert steps[0].actions == (RemoveIfPresent("local", "service", ("gaia-develop-drain",)),)
    assert not Remains((), (), drain_job="gaia-develop-drain").empty
