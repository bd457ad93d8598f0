"""Rollback on the in-memory Swarm (tests/unit/swarm_sim.py): the labels a deploy
records for it, the release it puts back (its recorded digests, nothing built, no
migration), and the refusals that change nothing. tests/unit/test_rollback.py proves
the choice of images alone (deploy.previous_release, pipeline.plan).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from swarm_deploy.errors import RollbackError
from swarm_deploy.pipeline import Project
from swarm_deploy.usecases import Outcome
from tests.unit.swarm_sim import Sim
from tests.unit.test_interrupts import EDGE, assert_converged, project, run, sim

__all__ = ["project", "sim"]  # the fixtures of the kill-anywhere matrix

IMAGES = ("backend", "frontend", "bot")
RECORDED = ("live-colour", "release")


def digest(sim: Sim, image: str, release: str) -> str:
    """The digest the registry gave the image of a release when it was pushed."""
    return sim.digests[f"127.0.0.1:5000/acme/gaia-{image}:{release}"]


def record(sim: Sim) -> dict[str, str]:
    """What the edge's labels record of the live release and of the one before it."""
    labels = sim.services[EDGE].labels
    return {
        key.removeprefix("swarm-deploy."): value
        for key, value in labels.items()
        if key.removeprefix("swarm-deploy.").removeprefix("previous.").split(".")[0]
        in (*RECORDED, "image")
    }


def expected_record(
    sim: Sim, live: tuple[str, str], previous: tuple[str, str], images: tuple[str, ...] = IMAGES
) -> dict[str, str]:
    """(colour, release) live and before it, each with its images by digest."""
    return {
        "live-colour": live[0],
        "release": live[1],
        **{f"image.{name}": digest(sim, name, live[1]) for name in images},
        "previous.live-colour": previous[0],
        "previous.release": previous[1],
        **{f"previous.image.{name}": digest(sim, name, previous[1]) for name in IMAGES},
    }


def running_images(sim: Sim, stack: str) -> dict[str, str]:
    return {name.removeprefix(f"{stack}_"): s.image for name, s in sim.stack(stack).items()}


def users_see(sim: Sim) -> tuple[object, ...]:
    edge = sim.edge(EDGE)
    services = {name: (s.image, s.replicas) for name, s in sim.services.items()}
    return (services, edge.served, edge.file, dict(sim.services[EDGE].labels))


def reconfigure(project: Project, edit: Callable[[dict[str, Any]], None]) -> Project:
    """The same project with its swarm-deploy.yml edited (a later or earlier checkout)."""
    path = project.config.root / "swarm-deploy.yml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return Project.load(path)


def without_bot(data: dict[str, Any]) -> None:
    del data["services"]["bot"], data["images"]["bot"]


def test_a_rollback_puts_the_previous_release_back_by_its_digests_and_records_it(
    project: Project, sim: Sim
) -> None:
    assert isinstance(run(project, sim, "r1"), Outcome)
    assert isinstance(run(project, sim, "r2"), Outcome)
    assert record(sim) == expected_record(sim, ("green", "r2"), ("blue", "r1"))
    start = len(sim.log)

    back = run(project, sim, "", rollback=True)
    assert isinstance(back, Outcome)
    assert back.plan.release.version == "r1"
    assert_converged(sim, "r1")
    assert sim.edge(EDGE).served == "blue"
    assert running_images(sim, "gaia-develop-blue") == {
        name: digest(sim, name, "r1") for name in IMAGES
    }
    assert record(sim) == expected_record(sim, ("blue", "r1"), ("green", "r2"))
    sent = sim.log[start:]
    assert not [argv for argv in sent if argv.startswith(("build", "push"))]
    assert not [argv for argv in sent if "migrate" in argv]

    # the release before r1 is r2 now: a second rollback undoes the first
    again = run(project, sim, "", rollback=True)
    assert isinstance(again, Outcome)
    assert again.plan.release.version == "r2"
    assert_converged(sim, "r2")
    assert record(sim) == expected_record(sim, ("green", "r2"), ("blue", "r1"))


def test_without_a_previous_release_a_rollback_refuses_and_changes_nothing(
    project: Project, sim: Sim
) -> None:
    assert isinstance(run(project, sim, "r1"), Outcome)
    before = users_see(sim)
    refused = run(project, sim, "", rollback=True)
    assert type(refused) is RollbackError
    assert str(refused) == (
        "no earlier release of develop is recorded on the target, so there is nothing to "
        "roll back to; deploy one: `swarm-deploy deploy --branch develop --release <git sha>`"
    )
    assert users_see(sim) == before
    assert_converged(sim, "r1")


def test_a_rollback_to_a_release_that_lacks_an_image_the_config_runs_changes_nothing(
    project: Project, sim: Sim
) -> None:
    """r1 was deployed before the bot existed; r2 added it."""
    assert isinstance(run(reconfigure(project, without_bot), sim, "r1"), Outcome)
    assert isinstance(run(project, sim, "r2"), Outcome)
    before = users_see(sim)
    refused = run(project, sim, "", rollback=True)
    assert type(refused) is RollbackError
    assert str(refused) == (
        "cannot roll back develop to release r1: that release has no image bot for the "
        "service bot, which this config runs (its images: backend, frontend). Nothing was "
        "changed.\nnext: run the rollback from a checkout of the project as it was at "
        "release r1 (its config runs only what that release has), or deploy a release that "
        "fixes the live one: `swarm-deploy deploy --branch develop`"
    )
    assert users_see(sim) == before


def test_a_rollback_from_a_checkout_without_an_image_runs_the_rest_of_that_release(
    project: Project, sim: Sim
) -> None:
    """The config dropped the bot after r2: rolling back to r1 runs r1's backend and
    frontend, not its bot, and records exactly what runs."""
    assert isinstance(run(project, sim, "r1"), Outcome)
    assert isinstance(run(project, sim, "r2"), Outcome)
    back = run(reconfigure(project, without_bot), sim, "", rollback=True)
    assert isinstance(back, Outcome)
    assert back.notes == (
        "release r1 also has the image bot, which this config no longer names: not deployed",
    )
    assert running_images(sim, "gaia-develop-blue") == {
        "backend": digest(sim, "backend", "r1"),
        "frontend": digest(sim, "frontend", "r1"),
    }
    assert not sim.stack("gaia-develop-green")
    assert sim.edge(EDGE).served == "blue"
    assert record(sim) == expected_record(
        sim, ("blue", "r1"), ("green", "r2"), images=("backend", "frontend")
    )
