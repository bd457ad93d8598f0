"""What the engine tests and the benchmark share about the test bed."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, NotFound

# the three-node Swarm (its own docstring says what it is) and its edge node's address
CLUSTER = Path(__file__).resolve().parent.parent / "scripts" / "testbed-cluster"
CLUSTER_EDGE = "10.77.0.12"
# where scripts/testbed and scripts/testbed-cluster keep their state, unless TESTBED_DIR says
TESTBED_DIR = "/var/lib/swarm-deploy-testbed"

# seconds: how long Swarm may take to stop, then to remove, a removed stack's containers
CONTAINERS_GONE = 90.0


def scrub(app: str, api: Any = None) -> None:
    """Remove every Swarm object of `app` (stacks, jobs, secrets, configs, volumes, networks).

    Containers come and go while this runs (Swarm stops and removes them itself): they are
    listed through the low-level API (`api`, the local engine's by default), which does not
    inspect each one; one already gone, or that the engine is already removing, is no
    error, and networks and volumes are removed only once no container of the app is left.
    """
    client = docker.from_env() if api is None else None
    api = client.api if client is not None else api

    def containers(all_: bool) -> list[str]:
        found = api.containers(all=all_)
        return [
            c["Id"] for c in found if any(n.lstrip("/").startswith(f"{app}-") for n in c["Names"])
        ]

    def settle(all_: bool) -> None:
        deadline = time.monotonic() + CONTAINERS_GONE
        while time.monotonic() < deadline and containers(all_):
            time.sleep(0.5)

    try:
        for service in api.services():
            if service["Spec"]["Name"].startswith((f"{app}-", f"{app}_")):
                with contextlib.suppress(NotFound):
                    api.remove_service(service["ID"])
        settle(all_=False)
        for container in containers(all_=True):
            try:
                api.remove_container(container, force=True)
            except APIError as error:
                if not going(error):
                    raise
        settle(all_=True)
        for secret in api.secrets(filters={"label": f"swarm-deploy.app={app}"}):
            api.remove_secret(secret["ID"])
        for config in api.configs():
            if config["Spec"]["Name"].startswith(f"{app}_"):
                api.remove_config(config["ID"])
        for network in api.networks():
            if network["Name"].startswith(f"{app}-"):
                with contextlib.suppress(NotFound):
                    api.remove_network(network["Id"])
        for volume in api.volumes().get("Volumes") or []:
            if volume["Name"].startswith(f"{app}-"):
                api.remove_volume(volume["Name"], force=True)
    finally:
        if client is not None:
            client.close()


def going(error: APIError) -> bool:
    """Whether a removal failed only because the object is gone or already being removed
    (the engine answers 409 "removal of container ... is already in progress" while Swarm
    removes a removed service's container itself)."""
    if isinstance(error, NotFound):
        return True
    return error.status_code == 409 and "already in progress" in str(error.explanation)


def copy_project(root: Path, to: Path) -> None:
    """The example app, copied: a project of the tests' (or bench's) own (the templates
    are the package's)."""
    shutil.copytree(root / "examples", to / "examples")


def on_three_nodes(data: dict[str, Any]) -> None:
    """A config shaped for the three-node Swarm: data on the node labelled for data, the
    edge on the node labelled for it (the labels scripts/testbed-cluster sets: node1, and
    node2 at CLUSTER_EDGE), one backend task per node."""
    data["swarm"] = {
        "data_node_label": "swarm-deploy.data",
        "edge_node_label": "swarm-deploy.edge",
        # the manager's dockerd listens there, not at /var/run/docker.sock (the test bed's)
        "docker_socket": f"{os.environ.get('TESTBED_DIR', TESTBED_DIR)}/cluster/node1/docker.sock",
    }
    data["services"]["backend"]["max_per_node"] = 1
