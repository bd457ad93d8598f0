"""Rollback to a recorded release, whatever images it had: the config decides which
services run, the release which image each runs; one it cannot run is refused first."""

from __future__ import annotations

import pytest

from swarm_deploy import pipeline, stack_secrets, usecases
from swarm_deploy.errors import DeployError
from swarm_deploy.naming import LABEL
from swarm_deploy.plan import Facts, Plan, Record
from swarm_deploy.render import Release
from swarm_deploy.usecases import previous_release
from tests.render_helpers import SENTINELS


def digest(name: str, release: str) -> str:
    return f"ghcr.io/acme/gaia-{name}@sha256:{release * 64}"


def recorded(live: dict[str, str], previous: dict[str, str]) -> Facts:
    """What the edge's labels say after release 2 replaced release 1."""
    state = {
        f"{LABEL}.live-colour": "green",
        f"{LABEL}.release": "r2",
        **{f"{LABEL}.image.{name}": ref for name, ref in live.items()},
        f"{LABEL}.previous.release": "r1",
        **{f"{LABEL}.previous.image.{name}": ref for name, ref in previous.items()},
    }
    return Facts(read=True, live_colour="green", state=state)


def images(*names: str, release: str = "1") -> dict[str, str]:
    return {name: digest(name, release) for name in names}


def rollback(project: pipeline.Project, facts: Facts) -> tuple[Plan, list[str]]:
    """What `swarm-deploy rollback` plans, once the facts are read."""
    branch = project.config.branch("develop")
    release, notes = previous_release(facts, branch, project.config)
    the_plan = usecases.plan(usecases.PlanRequest(
        project, "develop", release.version, environ=SENTINELS, facts=facts,
        prebuilt=release, rollback=True, force=True,
    ))  # fmt: skip
    return the_plan, notes


def test_a_release_from_before_an_image_was_added_is_refused_naming_it(
    project: pipeline.Project,
) -> None:
    """Release 1 predates the bot's image that release 2 (and the config) added: it used
    to end in `TypeError: Object of type StrictUndefined is not JSON serializable`."""
    facts = recorded(
        images("backend", "frontend", "bot", release="2"), images("backend", "frontend")
    )
    with pytest.raises(DeployError) as refused:
        rollback(project, facts)
    assert str(refused.value) == (
        "cannot roll back develop to release r1: that release has no image bot for the "
        "service bot, which this config runs (its images: backend, frontend). "
        "Nothing was changed.\n"
        "next: run the rollback from a checkout of the project as it was at release r1 (its "
        "config runs only what that release has), or deploy a release that fixes the live "
        "one: `swarm-deploy deploy --branch develop`"
    )


def test_a_release_with_an_image_the_config_dropped_runs_what_the_config_names(
    project: pipeline.Project,
) -> None:
    old = images("backend", "frontend", "bot", "worker")
    facts = recorded(images("backend", "frontend", "bot", release="2"), old)
    the_plan, notes = rollback(project, facts)
    assert notes == [
        "release r1 also has the image worker, which this config no longer names: not deployed"
    ]
    assert the_plan.release == Release("r1", images("backend", "frontend", "bot"))
    assert (the_plan.new_colour, [s.phase for s in the_plan.steps][:1]) == ("blue", ["render"])
    files = project.render(the_plan.branch, the_plan.release, secrets(project), "blue").files
    assert f'image: "{digest("bot", "1")}"' in files["stacks/app-blue.yml"]


def secrets(project: pipeline.Project) -> stack_secrets.BranchSecrets:
    return stack_secrets.resolve(project.config, project.config.branch("develop"), SENTINELS)


def test_the_record_keeps_no_image_label_of_an_older_release(project: pipeline.Project) -> None:
    """`docker service update --label-add` keeps what it is not told to remove: an image
    the new release lacks would stay recorded as its own, then become its rollback's."""
    facts = recorded(images("backend", "frontend", "bot", "worker", release="2"), images("x"))
    the_plan = usecases.plan(
        usecases.PlanRequest(project, "develop", "r3", environ=SENTINELS, facts=facts)
    )
    (record,) = [a for s in the_plan.steps for a in s.actions if isinstance(a, Record)]
    argv = record.argv(Release("r3", images("backend", "frontend", "bot", release="3")))
    added = [argv[i + 1] for i, part in enumerate(argv) if part == "--label-add"]
    removed = [argv[i + 1] for i, part in enumerate(argv) if part == "--label-rm"]
    assert [a for a in added if ".image." in a] == [
        f"{LABEL}.image.{name}={digest(name, '3')}" for name in ("backend", "frontend", "bot")
    ] + [
        f"{LABEL}.previous.image.{name}={digest(name, '2')}"
        for name in ("backend", "frontend", "bot", "worker")
    ]
    assert removed == [f"{LABEL}.image.worker", f"{LABEL}.previous.image.x"]
