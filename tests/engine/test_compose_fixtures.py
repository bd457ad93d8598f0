"""Each Compose fixture (tests/fixtures/compose/), from `swarm-deploy init` to two
branches served side by side on the test bed, with no value of its .env anywhere but in
Swarm secrets.

What a user adds to init's config to deploy to this machine is a profile of their own,
swarm-deploy.local.yml next to it (docs/config.md, Profiles): images built FROM the test
bed's base image (every fixture's Dockerfile takes ARG BASE_IMAGE) and pushed to its
registry, the test bed's stand-ins for the shared services' and the edge's images, and a
port of each of two branches. Secret values come from the fixture's .env
(--secrets-env-file), the file Compose read them from; a secret whose variable init named
after the app (an admin password the Compose file gave no variable) gets a value of the
test's own from the environment, and is scanned for too.

The steps are the README's quick start (init, check, doctor, plan, deploy); every URL
plan and deploy print must answer. Each fixture is one test doing both branches, its app
`cf<n>` removed before and after.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from bench.testbed import scrub

from swarm_deploy.naming import BranchNames, SharedNames
from swarm_deploy.secrets import parse_env
from tests.engine.conftest import Bed, Project, everything_the_engine_shows
from tests.tools.test_init import FIXTURES, SHAPES

BRANCHES = ("develop", "feature/x")
FIRST_PORT = 18300  # two a fixture, in SHAPES order
URL = re.compile(r"https?://[^\s,;)]+")


def apps() -> Iterator[tuple[str, str, dict[str, int]]]:
    """Each fixture's shape, app name and the port of each branch: all apart."""
    for number, shape in enumerate(SHAPES, start=1):
        first = FIRST_PORT + 2 * (number - 1)
        yield shape, f"cf{number}", {b: first + i for i, b in enumerate(BRANCHES)}


def local_profile(written: dict[str, Any], bed: Bed, ports: dict[str, int]) -> dict[str, Any]:
    """What deploying init's config to the test bed changes: a user's own local profile."""
    images = bed.env["TESTBED_IMAGES"]
    profile: dict[str, Any] = {
        "registry": f"{bed.env['REGISTRY']}/fixtures",
        "target": "local",
        "images": {
            name: {"build_args": {"BASE_IMAGE": bed.env["BASE_IMAGE"]}}
            for name in written["images"]
        },
        "edge": {"image": f"{images}/nginx:bookworm", "relay_image": f"{images}/haproxy:bookworm"},
        "branches": [{"match": branch, "port": port} for branch, port in ports.items()],
    }
    if written.get("shared"):
        profile["shared"] = {kind: {"image": f"{images}/{kind}:bookworm"}
                             for kind in written["shared"]}  # fmt: skip
    return profile


def mounted(services: list[str], path: str) -> str:
    """A file as read in the one running task of `services` (of which one runs)."""
    client = docker.from_env()
    try:
        found = [
            container
            for service in services
            for container in client.containers.list(
                filters={"label": f"com.docker.swarm.service.name={service}"}, ignore_removed=True
            )
        ]
        assert len(found) == 1, f"one running task of {services}, found {len(found)}"
        code, output = found[0].exec_run(["cat", path])
        assert code == 0, output
        assert isinstance(output, bytes)  # not streamed
        return output.decode()
    finally:
        client.close()


def secret_files(app: str, written: dict[str, Any]) -> Iterator[tuple[str, list[str], str]]:
    """Where each secret of init's config is mounted: its name, the services that may run
    it (either colour of each branch), and the file."""
    for service, spec in written["services"].items():
        for secret in spec.get("secrets", []):
            for branch in BRANCHES:
                names = BranchNames.derive(app, branch)
                colours = [names.colour_service(colour, service) for colour in ("blue", "green")]
                yield secret, colours, f"/run/secrets/{secret}"
    for kind, spec in (written.get("shared") or {}).items():
        path = f"/run/secrets/{kind}_admin"  # templates/stacks/shared.yml
        yield spec["admin_password"], [SharedNames(app).service(kind)], path


def remove_images(app: str, bed: Bed) -> None:
    """The images the deploys built and tagged on this machine."""
    client = docker.from_env()
    try:
        for image in client.images.list(name=f"{bed.env['REGISTRY']}/fixtures/{app}-*"):
            client.images.remove(str(image.id), force=True)
    finally:
        client.close()


@pytest.mark.parametrize(("shape", "app", "ports"), list(apps()), ids=SHAPES)
def test_init_then_two_branches_serve_and_no_env_value_shows(
    shape: str, app: str, ports: dict[str, int], testbed: Bed, tmp_path: Path
) -> None:
    root = tmp_path / shape
    shutil.copytree(FIXTURES / shape, root, ignore=shutil.ignore_patterns("expected*"))
    env_file = root / ".env"
    env_values = parse_env(env_file.read_text(), str(env_file))
    values = list(env_values.values())
    env = {**os.environ, "DOCKER_CONFIG": testbed.env["DEPLOYER_DOCKER_CONFIG"]}
    project = Project(root, root / "swarm-deploy.local.yml", env)
    outputs: dict[str, str] = {}

    def ran(name: str, result: subprocess.CompletedProcess[str]) -> str:
        outputs[name] = result.stdout + result.stderr
        assert result.returncode == 0, f"{name}:\n{outputs[name]}"
        return result.stdout

    scrub(app)
    try:
        started = time.monotonic()
        ran("init", project.run("init", "--app", app))
        written = yaml.safe_load((root / "swarm-deploy.yml").read_text())
        given = {
            spec["env"]: f"sentinel-given-{name}-{app}"
            for name, spec in (written.get("secrets") or {}).items()
            if spec["env"] not in env_values
        }
        env.update(given)
        values += given.values()
        project.config.write_text(yaml.safe_dump(local_profile(written, testbed, ports)))
        ran("check", project.cli("check", "--secrets-env-file", ".env"))
        ran("doctor", project.cli("doctor"))
        urls = []
        for branch in BRANCHES:
            for command in ("plan", "deploy"):
                said = ran(f"{command} {branch}", project.cli(
                    command, "--branch", branch, "--secrets-env-file", ".env"
                ))  # fmt: skip
                # every secret's value read from the .env (or the environment)
                assert "_unresolved" not in outputs[f"{command} {branch}"]
                urls += [(command, url) for url in URL.findall(said)]
        assert urls == [
            (command, f"http://127.0.0.1:{ports[branch]}")
            for branch in BRANCHES
            for command in ("plan", "deploy")
        ]
        for url in {url for _, url in urls}:
            answer = httpx.get(f"{url}/", timeout=5)
            assert (answer.status_code, answer.text) == (200, "ok\n"), url
        print(f"\n{shape}: init to two serving branches: {time.monotonic() - started:.0f} s")

        # each value is in its Swarm secret: the file the service reads
        secrets = written.get("secrets") or {}
        read = {**env_values, **given}
        checked = set()
        for secret, services, path in secret_files(app, written):
            assert mounted(services, path) == read[secrets[secret]["env"]], path
            checked.add(secret)
        assert checked == set(secrets)
        ran("status", project.cli("status"))
        files = {
            f"file {path.relative_to(root)}": path.read_text(errors="replace")
            for path in root.rglob("*")
            if path.is_file() and path != env_file
        }
        shown = everything_the_engine_shows(app)
        assert {kind.split()[0] for kind in shown} >= {"service", "container", "config"}
        scanned = {**files, **outputs, **shown}
        leaks = [(where, v) for where, text in scanned.items() for v in values if v in text]
        assert leaks == []
    finally:
        scrub(app)
        remove_images(app, testbed)
