"""Rollback on the real Swarm to releases whose images differ from the config's: a
release from before an image was added is refused before anything changes; one with
an image the config dropped runs without it; the record keeps only what runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import yaml

from swarm_deploy.naming import BranchNames
from tests.engine.conftest import APP, PORTS, Project, answers

BRANCH = "feature/edge"
PORT = PORTS[BRANCH]
NAMES = BranchNames.derive(APP, BRANCH)


def with_worker(project: Project) -> Path:
    """The tests' config with one more image and a service that runs it."""
    data = yaml.safe_load(project.config.read_text())
    data["images"]["worker"] = {
        "context": "examples/gaia/frontend",
        "build_args": {"BASE_IMAGE": "swarm-deploy/base:bookworm"},
    }
    data["services"]["worker"] = {"image": "worker"}
    return project.write_config(
        "with-worker.yml", {"images": data["images"], "services": data["services"]}
    )


def edge_labels() -> dict[str, str]:
    client = docker.from_env()
    try:
        labels: dict[str, str] = client.api.inspect_service(NAMES.edge_service)["Spec"]["Labels"]
        return labels
    finally:
        client.close()


def branch_services() -> list[str]:
    client = docker.from_env()
    try:
        found: list[dict[str, Any]] = client.api.services(
            filters={"label": f"swarm-deploy.slug={NAMES.slug}"}
        )
        return sorted(s["Spec"]["Name"] for s in found)
    finally:
        client.close()


def images_recorded(prefix: str = "swarm-deploy.image.") -> list[str]:
    return sorted(k.removeprefix(prefix) for k in edge_labels() if k.startswith(prefix))


def test_rollback_across_an_added_image(project: Project) -> None:
    worker = with_worker(project)
    for release, config in (("r1", project.config), ("r2", worker)):
        result = project.deploy(BRANCH, release, config=config)
        assert result.returncode == 0, result.stdout + result.stderr
    live = answers(PORT).json()["colour"]
    assert f"{NAMES.colour_stack(live)}_worker" in branch_services()

    before = (edge_labels(), branch_services())
    refused = project.cli("rollback", "--branch", BRANCH, config=worker)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr == (
        f"rollback failed: cannot roll back {BRANCH} to release r1: that release has no image "
        "worker for the service worker, which this config runs (its images: backend, bot, "
        "frontend). Nothing was changed.\n"
        "next: run the rollback from a checkout of the project as it was at release r1 (its "
        "config runs only what that release has), or deploy a release that fixes the live "
        f"one: `swarm-deploy deploy --branch {BRANCH}`\n"
    )
    assert (edge_labels(), branch_services()) == before
    assert answers(PORT).json()["version"] == "r2"

    # with the config r1 was deployed with: r1 back, and no worker
    back = project.cli("rollback", "--branch", BRANCH)
    assert back.returncode == 0, back.stdout + back.stderr
    assert answers(PORT).json()["version"] == "r1"
    assert not [name for name in branch_services() if name.endswith("_worker")]
    assert images_recorded() == ["backend", "bot", "frontend"]
    assert images_recorded("swarm-deploy.previous.image.") == [
        "backend",
        "bot",
        "frontend",
        "worker",
    ]

    # and forward again with it: r2 runs without the image this config does not name
    again = project.cli("rollback", "--branch", BRANCH)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (
        "release r2 also has the image worker, which this config no longer names: not deployed"
        in again.stdout
    )
    assert answers(PORT).json()["version"] == "r2"
    labels = edge_labels()
    assert labels["swarm-deploy.previous.release"] == "r1"
    assert images_recorded() == ["backend", "bot", "frontend"]
    assert images_recorded("swarm-deploy.previous.image.") == ["backend", "bot", "frontend"]
