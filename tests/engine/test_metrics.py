"""The metrics path on the test bed's real Swarm: a branch whose backend declares
`metrics` gets an agent in its edge stack, and the backend's samples reach the shared
Prometheus, labelled with the branch, colour and service (docs/observability.md).

An app of its own (`gaiap`), so that the tests' app keeps deploying what it always did.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.engine.conftest import Bed, Project, app_project

APP = "gaiap"
PORT = 18093


@pytest.fixture(scope="module")
def metered(testbed: Bed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    def metrics(data: dict[str, Any]) -> None:
        data["branches"] = [{"match": "develop", "port": PORT}]
        data["services"]["backend"]["metrics"] = {"port": 8000}

    with app_project(testbed, tmp_path_factory.mktemp("metered"), APP, metrics) as project:
        yield project


def docker(*args: str) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def query(promql: str, app: str = APP) -> list[dict[str, Any]]:
    """A query to the app's shared Prometheus, from inside its own container (it publishes
    no port)."""
    container = docker(
        "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={app}-shared_prometheus"
    ).split()[0]
    url = "http://127.0.0.1:9090/api/v1/query"
    answer = subprocess.run(
        # encoded by curl: a query's braces and quotes are not a URL's
        ["docker", "exec", container, "curl", "-fsS", "-G", "--data-urlencode", f"query={promql}",
         url],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if answer.returncode != 0:
        return []  # still starting: Prometheus answers 503 until its storage is ready
    result: list[dict[str, Any]] = json.loads(answer.stdout)["data"]["result"]
    return result


def test_a_declared_metrics_port_reaches_the_shared_prometheus(metered: Project) -> None:
    deployed = metered.deploy("develop", "metrics1")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    services = docker("service", "ls", "--format", "{{.Name}}", "--filter", f"name={APP}-")
    assert f"{APP}-develop-edge_agent" in services.split()
    deadline = time.monotonic() + 120
    while not (found := query("gaia_info")) or len(found) < 2:
        assert time.monotonic() < deadline, f"gaia_info of both backend tasks within 120 s: {found}"
        time.sleep(2)
    instances = set()
    for series in found:
        labels = series["metric"]
        instances.add(labels.pop("instance"))
        assert labels == {
            "__name__": "gaia_info",
            "app": APP,
            "branch": "develop",
            "colour": "blue",
            "job": "backend",
            "service": "backend",
            "version": "metrics1",
        }
    assert len(instances) == 2  # each of the two replicas, by its address on the branch network
