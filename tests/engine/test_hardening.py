"""Hardening on the real Swarm: branches cannot reach each other, secret values appear
nowhere, hostile branch names never reach a shell, and faults leave users served.

Faults run under load (tests/engine/conftest.py Traffic). Where a fault must cost
requests (the only nginx of a branch killed; the whole engine restarted), the test
asserts that service comes back on the same colour and prints the failed count; where it
need not (a registry down, an SSH connection cut, a lock without heartbeat), it asserts 0.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import docker
import httpx
import pytest
import yaml

from swarm_deploy import config as config_module
from swarm_deploy import stack_secrets
from swarm_deploy.naming import BranchNames
from tests.engine.conftest import (
    APP,
    PORTS,
    Bed,
    Project,
    Traffic,
    answers,
    everything_the_engine_shows,
    start_deploy,
    until_step,
)

BASE_IMAGE = "swarm-deploy/base:bookworm"
SENTINELS = {
    "GAIAT_SESSION_KEY": "sentinel-session-7f3a9c",
    "GAIAT_TELEGRAM_TOKEN": "sentinel-telegram-2b8e1d",
}
PWNED = Path("/tmp/swarm-deploy-pwned")  # noqa: S108 - the canary a shell injection would create


@pytest.fixture(scope="module", autouse=True)
def develop_is_live(project: Project) -> None:
    """These tests need develop serving; the other engine tests may not have run first."""
    try:
        answers(PORTS["develop"], tries=2)
    except httpx.TransportError:
        result = project.deploy("develop", "h0")
        assert result.returncode == 0, result.stdout + result.stderr


def names(branch: str) -> BranchNames:
    return BranchNames.derive(APP, branch)


def run_in(network: str, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """A throwaway container on a branch's network (they are attachable): exit code, output."""
    env_args = [part for key, value in (env or {}).items() for part in ("--env", f"{key}={value}")]
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", network, *env_args, BASE_IMAGE, *argv],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def networks_of(service: str) -> set[str]:
    """The networks a service's running tasks are attached to."""
    client = docker.from_env()
    try:
        tasks = client.api.tasks(filters={"service": service, "desired-state": "running"})
    finally:
        client.close()
    return {a["Network"]["Spec"]["Name"] for t in tasks for a in t.get("NetworksAttachments", [])}


def task_address(service: str, network: str) -> str:
    client = docker.from_env()
    try:
        for task in client.api.tasks(filters={"service": service, "desired-state": "running"}):
            for attachment in task.get("NetworksAttachments", []):
                if attachment["Network"]["Spec"]["Name"] == network:
                    address: str = attachment["Addresses"][0].split("/")[0]
                    return address
    finally:
        client.close()
    raise AssertionError(f"{service} has no address on {network}")


def test_a_branch_cannot_reach_another_branch(project: Project) -> None:
    result = project.deploy("feature/x", "h1")
    assert result.returncode == 0, result.stdout + result.stderr
    feature, develop = names("feature/x"), names("develop")
    live = answers(PORTS["develop"]).json()["colour"]
    develop_backend = develop.colour_service(live, "backend")
    assert networks_of(feature.relay_service) == {feature.network, f"{APP}-shared"}
    own_backend = feature.colour_service("blue", "backend")
    curl = ("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5")

    code, output = run_in(feature.network, *curl, f"http://{own_backend}:8000/api/")
    assert (code, output) == (0, "200"), "the branch reaches its own backend"
    # Another branch's backend shares no network with this one. Checked without sending it
    # a packet: a name unknown to Swarm's DNS is forwarded off the machine, and an address
    # not on an attached network leaves through the default route (docker_gwbridge).
    assert networks_of(develop_backend) == {develop.network}
    assert networks_of(own_backend) == {feature.network}
    address = task_address(develop_backend, develop.network)
    code, route = run_in(feature.network, "ip", "route", "get", address)
    assert code == 0
    assert "dev eth0" not in route, f"no overlay interface leads to {address}: {route}"
    code, _ = run_in(feature.network, *curl, f"http://{feature.edge_service}:8081/api/health")
    assert code != 0, "the preview route listens inside the nginx container only"

    cfg = config_module.load(project.config)
    secrets = stack_secrets.resolve(cfg, cfg.branch("feature/x"), project.env)
    password = secrets.branch["pg_password"].value
    assert password is not None
    psql = ("psql", "-h", feature.relay_service, "-U", feature.role, "-tAc", "select 1")
    env = {"PGPASSWORD": password.reveal().decode()}
    code, output = run_in(feature.network, *psql, "-d", feature.database("main"), env=env)
    assert (code, output.strip()) == (0, "1"), "the relay takes the branch to its database"
    code, output = run_in(feature.network, *psql, "-d", develop.database("main"), env=env)
    assert code != 0
    assert "permission denied for database" in output


class ProcessSampler:
    """`ps` of the whole machine (containers' processes included), every 100 ms."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.is_set():
            ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False)
            self.seen.update(ps.stdout.splitlines())
            time.sleep(0.1)

    def __enter__(self) -> ProcessSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_no_secret_value_shows_anywhere(project: Project) -> None:
    data = yaml.safe_load(project.config.read_text())
    data["secrets"]["session_key"] = {"env": "GAIAT_SESSION_KEY"}
    data["secrets"]["telegram_token"] = {"env": "GAIAT_TELEGRAM_TOKEN"}
    scanned_config = project.write_config("scan.yml", {"secrets": data["secrets"]})
    env = {**project.env, **SENTINELS}
    cfg = config_module.load(scanned_config)
    resolved = stack_secrets.resolve(cfg, cfg.branch("feature/scan"), env)
    values = [s.value.reveal().decode() for s in resolved.all() if s.value is not None]
    assert set(SENTINELS.values()) <= set(values)
    # the PostgreSQL and Redis admin passwords, the branch's two derived ones, two app secrets
    assert len(values) == 6

    def cli(*args: str) -> str:
        result = subprocess.run(
            [*command(), *args, "--config", str(scanned_config)],
            cwd=project.root, env=env, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        return f"{result.returncode}\n{result.stdout}\n{result.stderr}"

    outputs = {"plan": cli("plan", "--branch", "feature/scan", "--release", "s1")}
    outputs["plan --json"] = cli("plan", "--branch", "feature/scan", "--release", "s1", "--json")
    with ProcessSampler() as sampler:
        outputs["deploy"] = cli("deploy", "--branch", "feature/scan", "--release", "s1")
    assert outputs["deploy"].startswith("0\n"), outputs["deploy"]
    outputs["status"] = cli("status")
    outputs["status --json"] = cli("status", "--json")
    outputs["error"] = cli("deploy", "--branch", "nope/not-allowed", "--release", "s2")
    outputs["rendered"] = "\n".join(
        p.read_text() for p in (project.root / ".swarm-deploy").rglob("*") if p.is_file()
    )
    outputs["process list"] = "\n".join(sampler.seen)
    assert len(sampler.seen) > 20, "the sampler saw the deploy's processes"
    outputs |= everything_the_engine_shows(APP)
    leaks = [(where, value) for where, text in outputs.items() for value in values if value in text]
    assert leaks == []
    assert project.cli("destroy", "--branch", "feature/scan", config=scanned_config).returncode == 0


def command() -> list[str]:
    found = shutil.which("swarm-deploy")
    assert found is not None
    return [found]


def test_hostile_branch_names_never_reach_a_shell(project: Project) -> None:
    hostile = f"feature/$(touch${{IFS}}{PWNED});`touch${{IFS}}{PWNED}`;\"x'y"
    PWNED.unlink(missing_ok=True)
    planned = project.cli("plan", "--branch", hostile, "--release", "x1", "--json")
    assert planned.returncode == 0, planned.stderr
    for step in json.loads(planned.stdout)["steps"]:
        for action in step["actions"]:
            for part in action.get("argv", []):
                assert "$(" not in part or part.startswith("set -eu"), part
    result = project.deploy(hostile, "x1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not PWNED.exists()
    status = json.loads(project.cli("status", "--json").stdout)
    assert hostile in [b["branch"] for b in status["branches"]]
    assert project.cli("destroy", "--branch", hostile, "--drop-data").returncode == 0
    assert not PWNED.exists()


def pidfile(testbed: Bed, name: str) -> int:
    return int((Path(testbed.env["TESTBED_DIR"]) / "run" / f"{name}.pid").read_text())


def test_a_registry_down_during_a_deploy_fails_clearly_and_users_see_nothing(
    project: Project, testbed: Bed
) -> None:
    before = answers(PORTS["develop"]).json()
    os.kill(pidfile(testbed, "registry"), signal.SIGTERM)
    time.sleep(1)
    try:
        with Traffic(PORTS["develop"]) as traffic:
            result = project.deploy("develop", "reg1")
    finally:
        subprocess.run([str(Path(__file__).parents[2] / "scripts" / "testbed"), "up"],
                       capture_output=True, check=True)  # fmt: skip
    assert result.returncode == 2
    assert "docker push 127.0.0.1:5000/acme/gaiat-backend:reg1` exited" in result.stderr
    after = answers(PORTS["develop"]).json()
    assert (after["colour"], after["version"]) == (before["colour"], before["version"])
    assert traffic.failures("new", "keepalive") == {}


def test_a_lock_without_heartbeat_is_refused_clearly_and_freed_on_request(
    project: Project,
) -> None:
    """A lock taken by a swarm-deploy that sends no heartbeat (an older one, on another
    machine) cannot be judged: the deploy refuses, naming it and the command that frees
    it; after that command, the deploy goes through."""
    holder = {
        "who": "ci@elsewhere", "host": "elsewhere", "pid": 4242,
        "started_at": "2026-01-01T00:00:00Z", "action": "deploy of develop old", "token": "t",
    }  # fmt: skip
    lock = f"{APP}_develop_lock"
    subprocess.run(
        ["docker", "config", "create", "--label", f"swarm-deploy.lock={lock}", lock, "-"],
        input=json.dumps(holder), text=True, capture_output=True, check=True,
    )  # fmt: skip
    refused = project.deploy("develop", "lock1", "--lock-wait", "3")
    assert refused.returncode == 2
    assert "ci@elsewhere (deploy of develop old, pid 4242 on elsewhere)" in refused.stderr
    assert "free it with `swarm-deploy unlock --branch develop`" in refused.stderr
    freed = project.cli("unlock", "--branch", "develop")
    assert freed.returncode == 0, freed.stdout + freed.stderr
    with Traffic(PORTS["develop"]) as traffic:
        deployed = project.deploy("develop", "lock1")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert answers(PORTS["develop"]).json()["version"] == "lock1"
    assert traffic.failures("new", "keepalive") == {}


def test_an_ssh_connection_cut_mid_deploy_then_a_rerun_converges(
    project: Project, testbed: Bed
) -> None:
    with Traffic(PORTS["develop"]) as traffic:
        proc = start_deploy(
            ["deploy", "--branch", "develop", "--release", "cut1",
             "--host", testbed.ssh_target, "--config", str(project.config)],
            project.root, project.env,
        )  # fmt: skip
        until_step(proc, "colour")
        # every sshd session of the deployer (its ControlMaster and whatever runs in it), for
        # two seconds of the gate: what is in flight breaks; later commands connect again
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            subprocess.run(["pkill", "-f", "sshd: root@"], check=False)
            time.sleep(0.1)
        _, stderr = proc.communicate(timeout=300)
        if proc.returncode:  # a clear message, never a traceback
            assert "Traceback" not in stderr, stderr
            said = [
                line
                for line in stderr.splitlines()
                if line.startswith(("deploy failed:", "error:"))
            ]
            assert said, stderr
            print(f"\nthe deploy whose SSH sessions were cut failed: {said[0]}")
        else:
            print("\nthe deploy whose SSH sessions were cut completed (reconnected)")
        rerun = project.deploy("develop", "cut1", "--host", testbed.ssh_target)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert answers(PORTS["develop"]).json()["version"] == "cut1"
    assert traffic.failures("new", "keepalive") == {}


def test_the_edge_killed_comes_back_on_the_same_colour(project: Project) -> None:
    before = answers(PORTS["develop"]).json()["colour"]
    client = docker.from_env()
    try:
        with Traffic(PORTS["develop"]) as traffic:
            (nginx,) = client.containers.list(
                filters={"label": f"com.docker.swarm.service.name={names('develop').edge_service}"}
            )
            nginx.kill()
            back_after = wait_for_service(PORTS["develop"])
    finally:
        client.close()
    assert answers(PORTS["develop"]).json()["colour"] == before
    # back within wait_for_service's limit (120 s) is the assertion: no timing is held
    print(f"\nedge killed: answering again {back_after:.1f}s later; {traffic.outage()}")


def wait_for_service(port: int, limit: float = 120) -> float:
    started = time.monotonic()
    time.sleep(0.5)
    while time.monotonic() - started < limit:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"nothing answered on {port} within {limit:g}s")


def test_dockerd_restarted_brings_every_branch_back_on_its_colour(
    project: Project, testbed: Bed
) -> None:
    before = answers(PORTS["develop"]).json()["colour"]
    with Traffic(PORTS["develop"]) as traffic:
        os.kill(pidfile(testbed, "dockerd"), signal.SIGTERM)
        subprocess.run([str(Path(__file__).parents[2] / "scripts" / "testbed"), "up"],
                       capture_output=True, check=True)  # fmt: skip
        back_after = wait_for_service(PORTS["develop"], limit=180)
    assert answers(PORTS["develop"]).json()["colour"] == before
    print(f"\ndockerd restarted: answering {back_after:.1f}s after it was up; {traffic.outage()}")
    assert not services_short_of_desired(project, "develop", limit=120)


def services_short_of_desired(project: Project, branch: str, limit: float) -> list[str]:
    """Poll `status --json` until every service of the branch runs as many tasks as it
    wants; return those that still do not after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        status = json.loads(project.cli("status", "--json").stdout)
        services = next(b for b in status["branches"] if b["branch"] == branch)["services"]
        short = [f"{s['name']}: {s['running']}/{s['desired']}" for s in services
                 if s["running"] != s["desired"]]  # fmt: skip
        if not short or time.monotonic() > deadline:
            return short
        time.sleep(1)
