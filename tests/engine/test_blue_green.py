"""Blue/green under load on the real Swarm: users never see a failed request, a bad
release never goes live, and the deploy says why.

Load: 100 req/s on new connections, 50 req/s on a keep-alive connection that retries
once like a browser, 25 req/s on one that never retries. None may lose a request: the
switch renames a file nginx tests on every request, so no connection is closed (a
reload, as the switch did before, closed idle ones: the third lost a request then).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import docker
import httpx
import yaml

from swarm_deploy.naming import LIVE_DIR, BranchNames
from tests.engine.conftest import APP, PORTS, Project, Traffic, answers, start_deploy, until_step
from tests.render_helpers import conf_from_before_live_files

BRANCH = "feature/load"
PORT = PORTS[BRANCH]


def variant(project: Project, name: str, backend_env: dict[str, str], timeout: str) -> Path:
    data = yaml.safe_load(project.config.read_text())
    data["services"]["backend"]["env"] = backend_env
    data["gate"]["timeout"] = timeout
    return project.write_config(name, {"services": data["services"], "gate": data["gate"]})


def live(port: int = PORT) -> tuple[str, str]:
    info = answers(port).json()
    return info["colour"], info["version"]


def assert_no_user_saw_a_failure(traffic: Traffic) -> None:
    assert traffic.count("new") > 100
    assert traffic.count("keepalive") > 50
    assert traffic.count("stubborn") > 25
    assert traffic.failures("new", "keepalive", "stubborn") == {}


def test_a_first_release_that_fails_its_gate_leaves_the_maintenance_page(project: Project) -> None:
    unhealthy = variant(project, "first-unhealthy.yml", {"GAIA_HEALTH_STATUS": "500"}, "8s")
    result = project.deploy(BRANCH, "u0", config=unhealthy)
    assert result.returncode == 1, result.stdout + result.stderr
    # the image's own HEALTHCHECK fails: its tasks never count as running (they start,
    # and once unhealthy Swarm starts new ones: which states are seen last, if any task
    # is seen between the old and the new, is timing)
    assert "deploy failed: gate for blue: " in result.stderr
    assert "_backend 0/2" in result.stderr or "unhealthy" in result.stderr
    assert "no colour was live: the branch answers 503 (maintenance)" in result.stderr
    page = answers(PORT, "/")
    assert page.status_code == 503
    assert page.headers["retry-after"] == "2"
    assert "is being deployed" in page.text


def test_three_deploys_under_load_lose_no_request(project: Project) -> None:
    first = project.deploy(BRANCH, "v1")
    assert first.returncode == 0, first.stdout + first.stderr
    with Traffic(PORT) as traffic:
        colours = []
        for release in ("v2", "v3", "v4"):
            result = project.deploy(BRANCH, release)
            assert result.returncode == 0, result.stdout + result.stderr
            colours.append(live())
    assert colours == [("green", "v2"), ("blue", "v3"), ("green", "v4")]
    assert_no_user_saw_a_failure(traffic)


def test_an_unhealthy_release_is_refused_and_nobody_notices(project: Project) -> None:
    unhealthy = variant(project, "unhealthy.yml", {"GAIA_API_HEALTH_STATUS": "500"}, "20s")
    with Traffic(PORT) as traffic:
        result = project.deploy(BRANCH, "v5-unhealthy", config=unhealthy)
    assert result.returncode == 1
    assert (
        "deploy failed: gate for blue: no 3 consecutive 200s through the preview route"
        in result.stderr
    )
    assert re.search(
        r"/api/health: \d+ probes?, best run 0 of 3 consecutive 200s, last answer 500",
        result.stderr,
    )
    assert f"{APP}-feature-load" in result.stderr
    assert "stays live" in result.stderr
    assert live() == ("green", "v4")
    assert_no_user_saw_a_failure(traffic)


def test_a_release_that_crashes_is_refused_at_once(project: Project) -> None:
    data = yaml.safe_load(project.config.read_text())
    data["services"]["backend"]["command"] = ["python3", "-c", "raise SystemExit(4)"]
    crashing = project.write_config("crashing.yml", {"services": data["services"]})
    with Traffic(PORT) as traffic:
        result = project.deploy(BRANCH, "v6-crash", config=crashing)
    assert result.returncode == 1
    # decided by the failed task (its error), not at the gate's timeout ("still ... after 120s")
    assert "_backend: task" in result.stderr
    assert "exit code 4" in result.stderr
    assert "after 120s" not in result.stderr
    assert live() == ("green", "v4")
    assert_no_user_saw_a_failure(traffic)


def test_two_deploys_of_one_branch_at_once_exactly_one_proceeds(project: Project) -> None:
    procs = [start(project, BRANCH, release, "--lock-wait", "0") for release in ("v7a", "v7b")]
    results = [(*p.communicate(timeout=600), p.returncode) for p in procs]
    codes = sorted(code for _, _, code in results)
    assert codes == [0, 2], results
    refused = next(err for _, err, code in results if code == 2)
    assert "another deploy of feature/load" in refused
    assert "holds the lock" in refused
    assert live()[1] in ("v7a", "v7b")


def test_different_branches_deploy_at_the_same_time(project: Project) -> None:
    pairs = ((BRANCH, "v7c"), ("feature/y", "y1"))
    procs = [start(project, branch, release) for branch, release in pairs]
    results = [(*p.communicate(timeout=600), p.returncode) for p in procs]
    failed = [
        f"{branch}: exit {code}\n{err}"
        for (branch, _), (_, err, code) in zip(pairs, results, strict=True)
        if code
    ]
    assert not failed, "\n".join(failed)
    assert live()[1] == "v7c"
    destroyed = project.cli("destroy", "--branch", "feature/y")
    assert destroyed.returncode == 0, destroyed.stderr


def test_a_deploy_waits_while_another_changes_the_shared_stack(project: Project) -> None:
    """Two `docker stack deploy` of one stack at once fail ("update out of sequence"), so
    the shared steps run under a lock: held here by this test, as another deploy would."""
    holder = {
        "who": "a test", "host": socket.gethostname(), "pid": os.getpid(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "action": "deploy of another branch", "token": "test",
    }  # fmt: skip
    lock = f"{APP}_shared_lock"
    subprocess.run(["docker", "config", "create", lock, "-"], input=json.dumps(holder),
                   text=True, capture_output=True, check=True)  # fmt: skip
    try:
        # --force: its shared steps run (this redeploy would skip them all, and take no lock)
        proc = start(project, BRANCH, "v7d", "--force")
        lines = TimedLines(proc)
        lines.wait_for("waiting for the lock of the shared stack (0s of 600s): a test (deploy of")
        time.sleep(3)
        released_at = time.monotonic()
    finally:
        subprocess.run(["docker", "config", "rm", lock], capture_output=True, check=False)
    proc.wait(timeout=600)
    assert proc.returncode == 0, lines.text() + (proc.stderr.read() if proc.stderr else "")
    assert lines.first("] shared ") > released_at, lines.text()
    assert live()[1] == "v7d"


class TimedLines:
    """A process's stdout, each line with the moment it arrived."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append((time.monotonic(), line))

    def wait_for(self, text: str, limit: float = 120) -> None:
        deadline = time.monotonic() + limit
        while not any(text in line for _, line in self.lines):
            assert time.monotonic() < deadline, f"no {text!r} within {limit:g}s:\n{self.text()}"
            time.sleep(0.2)

    def first(self, text: str) -> float:
        self.thread.join(timeout=10)
        return next(at for at, line in self.lines if text in line)

    def text(self) -> str:
        return "".join(line for _, line in self.lines)


def start(project: Project, branch: str, release: str, *extra: str) -> subprocess.Popen[str]:
    argv = ["deploy", "--branch", branch, "--release", release, *extra]
    argv += ["--config", str(project.config)]
    return start_deploy(argv, project.root, project.env)


def test_a_deployer_killed_mid_deploy_leaves_traffic_alone_and_the_next_converges(
    project: Project,
) -> None:
    before = live()
    with Traffic(PORT) as traffic:
        proc = start(project, BRANCH, "v8-killed")
        until_step(proc, "colour")  # the new colour is deployed; the gate is next
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert live() == before, "nothing switched"
        result = project.deploy(BRANCH, "v9")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"took over the lock of branch {BRANCH} from a holder that is gone" in result.stdout
    assert live()[1] == "v9"
    assert_no_user_saw_a_failure(traffic)


def test_rollback_puts_the_previous_release_back_through_the_gate(project: Project) -> None:
    colour, version = live()
    assert version == "v9"
    result = project.cli("rollback", "--branch", BRANCH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "build" not in result.stdout, "nothing is built: the recorded digests are deployed"
    assert "gate       health gate" in result.stdout
    new_colour, new_version = live()
    assert new_colour != colour
    assert new_version != "v9"


def test_the_live_colour_survives_an_nginx_restart(project: Project) -> None:
    expected = live()
    edge = BranchNames.derive(APP, BRANCH).edge_service
    client = docker.from_env()
    try:
        (container,) = client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={edge}"}
        )
        container.kill()
    finally:
        client.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/api/", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    assert live() == expected


def test_an_edge_from_before_live_files_is_upgraded_by_the_next_deploy(project: Project) -> None:
    """An edge as swarm-deploy left it before live/blue and live/green: its nginx.conf
    takes the colour from live/colour.conf on a (re)load and never looks at live/. The
    next deploy finds live/ naming no colour while nginx serves one, names that colour
    first (a repair step), updates the edge to today's nginx.conf (which then serves what
    live/ names), switches, and its verified switch removes live/colour.conf."""
    colour, _ = live()
    names = BranchNames.derive(APP, BRANCH)
    client = docker.from_env()
    try:
        edge = client.services.get(names.edge_service)
        spec = edge.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        (conf,) = [c for c in spec["Configs"] if c["File"]["Name"] == "/etc/nginx/nginx.conf"]
        text = base64.b64decode(client.configs.get(conf["ConfigID"]).attrs["Spec"]["Data"])
        before = client.configs.create(
            name=f"{conf['ConfigName']}-before",
            data=conf_from_before_live_files(text.decode()).encode(),
            labels={"com.docker.stack.namespace": names.edge_stack},
        )
        in_edge(
            client,
            names.edge_service,
            "sh",
            "-c",
            f"echo 'set $colour \"{colour}\";' >{LIVE_DIR}/colour.conf",
        )
        updated = subprocess.run(
            [
                "docker", "service", "update", "--quiet", "--detach=false",
                "--config-rm", conf["ConfigName"],
                "--config-add", f"source={before.name},target=/etc/nginx/nginx.conf",
                "--label-add", "swarm-deploy.edge-hash=from-before",
                names.edge_service,
            ],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert updated.returncode == 0, updated.stderr
        in_edge(client, names.edge_service, "rm", "-f", f"{LIVE_DIR}/blue", f"{LIVE_DIR}/green")
        assert live()[0] == colour, "the old nginx.conf serves live/colour.conf's colour"
        status = project.cli("status", "--branch", BRANCH)
        assert f"live/ names no colour but nginx serves {colour}" in status.stdout, status.stdout
        with Traffic(PORT) as traffic:
            result = project.deploy(BRANCH, "v10")
        assert result.returncode == 0, result.stdout + result.stderr
        print(f"an edge from before upgraded by a deploy: {traffic.outage()}")
        steps = result.stdout
        assert steps.index(f"name {colour} in live/ again") < steps.index("deploy the edge stack")
        new = "green" if colour == "blue" else "blue"
        assert live() == (new, "v10")
        assert in_edge(client, names.edge_service, "ls", "-A", LIVE_DIR) == new
    finally:
        client.close()


def in_edge(client: docker.DockerClient, service: str, *argv: str) -> str:
    """`argv` run in the service's one running container; its output."""
    (container,) = client.containers.list(
        filters={"label": f"com.docker.swarm.service.name={service}"}
    )
    ran = container.exec_run(list(argv))
    assert ran.exit_code == 0, ran.output
    return str(ran.output.decode().strip())
