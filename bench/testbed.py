"""What the engine tests and the benchmark share about the test bed."""

from __future__ import annotations

import time

import docker


def scrub(app: str) -> None:
    """Remove every Swarm object of `app` (stacks, jobs, secrets, configs, volumes, networks)."""
    client = docker.from_env()
    try:
        prefix = f"{app}-"
        for service in client.services.list():
            if service.name.startswith(prefix) or service.name.startswith(f"{app}_"):
                service.remove()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and [
            c for c in client.containers.list() if c.name.startswith(prefix)
        ]:
            time.sleep(0.5)
        for container in client.containers.list(all=True):
            if container.name.startswith(prefix):
                container.remove(force=True)
        for secret in client.secrets.list(filters={"label": f"swarm-deploy.app={app}"}):
            secret.remove()
        for config in client.configs.list():
            if config.name.startswith(f"{app}_"):
                config.remove()
        for network in client.networks.list():
            if network.name.startswith(prefix):
                network.remove()
        for volume in client.volumes.list():
            if volume.name.startswith(prefix):
                volume.remove(force=True)
    finally:
        client.close()
