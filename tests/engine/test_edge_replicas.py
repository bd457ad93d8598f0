"""A branch's nginx as two tasks on the real Swarm: a deploy switches both.

The test bed has no IPVS, so no ingress-mode port (DESIGN.md) and a host-mode port
holds one task: the branch here has no port, and what users would reach is read inside
each nginx task, as the deployer's own verification does. Traefik in front of the two
tasks (its health check and retry, a task killed under load) is the lead's test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from swarm_deploy.naming import LIVE_DIR, BranchNames
from tests.engine.conftest import Bed, Project, app_project

APP = "gaiarep"
BRANCH = "feature/two"
NAMES = BranchNames.derive(APP, BRANCH)


@pytest.fixture(scope="module")
def two(testbed: Bed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    def shape(data: dict[str, Any]) -> None:
        data["branches"] = [{"match": "feature/*"}]
        data["edge"]["replicas"] = 2

    with app_project(testbed, tmp_path_factory.mktemp("replicas"), APP, shape) as project:
        yield project


def served_by_each_task() -> list[tuple[str, str]]:
    """(what live/ holds, the colour a new request gets) in each running nginx task of the
    branch, by slot."""
    client = docker.from_env()
    try:
        tasks = client.api.tasks(
            filters={"service": NAMES.edge_service, "desired-state": "running"}
        )
        seen = []
        for task in sorted(tasks, key=lambda t: t["Slot"]):
            assert task["Status"]["State"] == "running", task["Status"]
            container = client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
            live = container.exec_run(["ls", "-A", LIVE_DIR]).output.decode()
            headers = container.exec_run(
                ["curl", "-s", "-o", "/dev/null", "-D", "-", "http://127.0.0.1/api/health"]
            ).output.decode()
            found = re.search(r"^X-Swarm-Deploy-Colour: (\S+)", headers, re.I | re.M)
            seen.append((live.strip(), found.group(1) if found else headers))
        return seen
    finally:
        client.close()


def test_a_deploy_switches_every_nginx_task(two: Project) -> None:
    first = two.deploy(BRANCH, "t1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert served_by_each_task() == [("blue", "blue"), ("blue", "blue")]
    second = two.deploy(BRANCH, "t2")
    assert second.returncode == 0, second.stdout + second.stderr
    assert served_by_each_task() == [("green", "green"), ("green", "green")]
    status = two.cli("status", "--branch", BRANCH)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "different colours" not in status.stdout, status.stdout
