"""The engine tests' world: the test bed (a real single-node Swarm, registries, sshd),
and a copy of the project whose local profile deploys an app of the tests' own.

`scripts/testbed up` starts whatever is missing (it installs packages on a fresh
machine, so the first run takes a few minutes); nothing here is ever skipped. Every
object of the tests' app is removed before and after the session, so a rerun on the
same machine starts from the same state, and the demo's app is never touched.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from bench.load import Sample, read
from bench.testbed import copy_project, scrub

from swarm_deploy import profiles
from tests.conftest import ROOT

APP = "gaiat"
PORTS = {
    "develop": 18090,
    "feature/x": 18091,
    "feature/load": 18092,
    "feature/edge": 18094,
    "feature/kill": 18096,
}


@dataclass(frozen=True)
class Bed:
    env: dict[str, str]

    @property
    def ssh_target(self) -> str:
        return self.env["SSH_TARGET"]

    @property
    def auth_registry(self) -> str:
        return self.env["AUTH_REGISTRY"]


@pytest.fixture(scope="session")
def testbed() -> Bed:
    result = subprocess.run(
        [str(ROOT / "scripts" / "testbed"), "up"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/testbed up failed:\n{result.stderr}")
    env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return Bed(env)


@dataclass(frozen=True)
class Project:
    """A copy of the project with a config for the tests' app."""

    root: Path
    config: Path
    env: dict[str, str]

    def cli(
        self, *args: str, config: Path | None = None, timeout: float = 600, drain: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`swarm-deploy ARGS... --config CONFIG` (the project's config by default)."""
        return self.run(*args, "--config", str(config or self.config), timeout=timeout, drain=drain)

    def run(
        self, *args: str, timeout: float = 600, drain: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Runs the installed `swarm-deploy` command, as the Dagger deployer container does;
        after a deploy or rollback, with `drain`, waits for the drain it handed off."""
        command = shutil.which("swarm-deploy")
        assert command is not None, "swarm-deploy is not on PATH (make venv)"
        result = subprocess.run(
            [command, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if drain and args[:1] in (("deploy",), ("rollback",)):
            drained()
        return result

    def deploy(
        self,
        branch: str,
        release: str,
        *extra: str,
        config: Path | None = None,
        drain: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        return self.cli(
            "deploy", "--branch", branch, "--release", release, *extra, config=config, drain=drain
        )

    def write_config(self, name: str, change: dict[str, object]) -> Path:
        """A variant of the tests' config, with top-level keys replaced."""
        data = yaml.safe_load(self.config.read_text())
        data.update(change)
        path = self.root / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path


@contextmanager
def app_project(
    testbed: Bed, root: Path, app: str, shape: Callable[[dict[str, Any]], None]
) -> Iterator[Project]:
    """A copy of the project whose local profile deploys `app`, its config changed by
    `shape`; every object of the app is removed before and after."""
    copy_project(ROOT, root)
    data = profiles.merged_data(ROOT / "swarm-deploy.local.yml")
    data["app"] = app
    shape(data)
    config = root / "swarm-deploy.yml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**os.environ, "DOCKER_CONFIG": testbed.env["DEPLOYER_DOCKER_CONFIG"]}
    scrub(app)
    try:
        yield Project(root, config, env)
    finally:
        scrub(app)


@pytest.fixture(scope="session")
def project(testbed: Bed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    def branches(data: dict[str, Any]) -> None:
        data["branches"] = [
            *({"match": branch, "port": port} for branch, port in PORTS.items()),
            {"match": "feature/*"},
        ]

    with app_project(testbed, tmp_path_factory.mktemp("project"), APP, branches) as project:
        yield project


def drains() -> list[str]:
    """The drain jobs deploys handed off (actions.HandOffDrain) that are still on the Swarm."""
    client = docker.from_env()
    api: Any = client.api  # the low-level client is untyped
    try:
        return [s["Spec"]["Name"] for s in api.services(filters={"label": "swarm-deploy.drain-of"})]
    finally:
        client.close()


def drained(limit: float = 90) -> None:
    """Wait until every handed-off drain has removed its old colour, and its own job: a
    deploy returns once live, and what a test asserts next is about what runs after it."""
    deadline = time.monotonic() + limit
    while left := drains():
        assert time.monotonic() < deadline, f"drain jobs still there after {limit:g}s: {left}"
        time.sleep(0.5)


def get(port: int, path: str = "/api/") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)


def answers(port: int, path: str = "/api/", tries: int = 20) -> httpx.Response:
    """The first answer from a freshly published port (bounded retries)."""
    for _ in range(tries):
        try:
            return get(port, path)
        except httpx.TransportError:
            time.sleep(0.5)
    return get(port, path)


def start_deploy(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`swarm-deploy ARGV...` in the background, its output piped."""
    command = shutil.which("swarm-deploy")
    assert command is not None, "swarm-deploy is not on PATH (make venv)"
    return subprocess.Popen(
        [command, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def until_step(proc: subprocess.Popen[str], phase: str) -> None:
    """Read the deploy's progress until a step of `phase` has finished."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if f"] {phase} " in line:
            return
    raise AssertionError(f"the deploy ended before its {phase} step")


@dataclass(frozen=True)
class Https:
    """A host name served over HTTPS, and the roots its certificate must chain to."""

    host: str
    cafile: Path


class Traffic:
    """Steady load on a port (bench/load.py in its own process) while a block runs."""

    def __init__(
        self, port: int, path: str = "/api/", host: str = "127.0.0.1", *, https: Https | None = None
    ) -> None:
        """Load on http://HOST:PORT/PATH, or with `https` on https://<https.host>/PATH
        sent to 127.0.0.1:PORT and checked against `https.cafile`."""
        self.url = f"http://{host}:{port}{path}"
        self.tls: list[str] = []
        if https is not None:
            self.url = f"https://{https.host}{path}"
            self.tls = ["--connect", f"127.0.0.1:{port}", "--cafile", str(https.cafile)]
        self.samples: list[Sample] = []

    def __enter__(self) -> Traffic:
        self.out = Path(tempfile.mkstemp(suffix=".jsonl")[1])
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "bench.load", "--url", self.url, *self.tls,
                "--new", "100", "--keepalive", "50", "--stubborn", "25",
                "--seconds", "900", "--out", str(self.out),
            ],
            cwd=ROOT,
        )  # fmt: skip
        time.sleep(2)  # a steady state before anything changes
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(2)
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.samples = read(self.out)
        self.out.unlink()

    def failed(self, kind: str) -> list[Sample]:
        return [s for s in self.samples if s.kind == kind and s.failed]

    def count(self, kind: str) -> int:
        return sum(s.kind == kind for s in self.samples)

    def failures(self, *kinds: str) -> dict[str, str]:
        """For each of these kinds with a failed request, what failed (`tally`): an
        assertion compares it with `{}`, and pytest then shows what failed."""
        return {kind: self.tally(failed) for kind in kinds if (failed := self.failed(kind))}

    @staticmethod
    def tally(samples: list[Sample]) -> str:
        """What failed, counted by answer (status and what its body said) or error, with
        the first and last start times: an assertion's message."""
        if not samples:
            return "none"
        counts = Counter(
            f"{s.status} {s.said!r}" if s.status is not None else str(s.error) for s in samples
        )
        span = f"began {min(s.t for s in samples):.2f} to {max(s.t for s in samples):.2f}"
        return f"{len(samples)} failed ({span}): " + ", ".join(
            f"{n}x {answer}" for answer, n in counts.most_common()
        )

    def outage(self) -> str:
        """How long users of new connections and browsers were refused, for the report."""
        failed = self.failed("new") + self.failed("keepalive")
        if not failed:
            return "0 failed requests"
        span = max(s.t for s in failed) - min(s.t for s in failed)
        total = self.count("new") + self.count("keepalive")
        return f"{len(failed)} of {total} requests failed over {span:.1f}s"


def everything_the_engine_shows(app: str) -> dict[str, str]:
    """Inspect output of every service, task, container, config, secret and built image of
    `app` (a config with its data; a secret's value is never shown by the engine)."""
    client = docker.from_env()
    api: Any = client.api  # the low-level client is untyped
    try:
        shown = {}
        for service in client.services.list():
            if str(service.name).startswith(f"{app}-"):
                shown[f"service {service.name}"] = json.dumps(service.attrs)
                tasks = api.tasks(filters={"service": service.id})
                shown[f"tasks of {service.name}"] = json.dumps(tasks)
        for container in client.containers.list(all=True, ignore_removed=True):
            if str(container.name).startswith(f"{app}-"):
                shown[f"container {container.name}"] = json.dumps(container.attrs)
        for config in client.configs.list():
            if str(config.name).startswith(f"{app}_"):
                data = base64.b64decode(config.attrs["Spec"]["Data"]).decode(errors="replace")
                shown[f"config {config.name}"] = json.dumps(config.attrs) + data
        for secret in api.secrets(filters={"label": f"swarm-deploy.app={app}"}):
            shown[f"secret {secret['Spec']['Name']}"] = json.dumps(secret)
        for image in client.images.list():
            if any(tag.split("/")[-1].startswith(f"{app}-") for tag in image.tags):
                history = subprocess.run(
                    ["docker", "history", "--no-trunc", str(image.id)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                shown[f"history {image.tags[0]}"] = history.stdout + json.dumps(image.attrs)
        return shown
    finally:
        client.close()
