"""What the engine tests and the benchmark share about the test bed."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import docker
from docker.errors import NotFound

from swarm_deploy.render import TEMPLATE_FILES


def scrub(app: str) -> None:
    """Remove every Swarm object of `app` (stacks, jobs, secrets, configs, volumes, networks).

    Containers come and go while this runs (Swarm stops them): they are listed through the
    low-level API, which does not inspect each one, and one already gone is no error.
    """
    client = docker.from_env()
    api = client.api

    def containers(all_: bool) -> list[str]:
        found = api.containers(all=all_)
        return [
            c["Id"] for c in found if any(n.lstrip("/").startswith(f"{app}-") for n in c["Names"])
        ]

    try:
        for service in api.services():
            if service["Spec"]["Name"].startswith((f"{app}-", f"{app}_")):
                with contextlib.suppress(NotFound):
                    api.remove_service(service["ID"])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and containers(all_=False):
            time.sleep(0.5)
        for container in containers(all_=True):
            with contextlib.suppress(NotFound):
                api.remove_container(container, force=True)
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
        client.close()


def copy_project(root: Path, to: Path) -> None:
    """The templates and the example app, copied: a project of the tests' (or bench's) own."""
    for name in sorted({path.split("/")[0] for path in TEMPLATE_FILES} | {"examples"}):
        shutil.copytree(root / name, to / name)
