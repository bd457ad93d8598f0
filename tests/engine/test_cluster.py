"""The same pipeline on a real three-node Swarm (scripts/testbed-cluster): three dockerd
in network namespaces of their own, node1 the manager (with sshd, as a VM would have),
node2 the edge node, images pulled by every node from a registry on the bridge.

Faults run under load through the branch's nginx on node2; the failed requests and the
time to recover are printed for the report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from bench.testbed import CLUSTER, CLUSTER_EDGE, copy_project, on_three_nodes

from swarm_deploy import profiles
from swarm_deploy.engine import Swarm
from tests.conftest import ROOT
from tests.engine.conftest import Bed, Traffic, start_deploy, until_step

APP = "gaiam"
PORT = 18190
EDGE = CLUSTER_EDGE


@dataclass(frozen=True)
class Cluster:
    root: Path
    config: Path
    build_config: Path
    env: dict[str, str]
    target: str
    registry: str
    socket_dir: Path

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["swarm-deploy", *args, "--config", str(self.config)],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip

    def node_docker(self, node: str, *args: str) -> str:
        socket = f"unix://{self.socket_dir}/{node}/docker.sock"
        return subprocess.run(
            ["docker", "--host", socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def images(self, release: str) -> list[str]:
        """Build with the pipeline's own build commands, push to the test bed's registry
        (whose storage the bridge registry serves), and name the digests on the bridge."""
        planned = subprocess.run(
            ["swarm-deploy", "plan", "--json", "--branch", "develop", "--release", release,
             "--config", str(self.build_config)],
            cwd=self.root, env=self.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        images = []
        for step in json.loads(planned.stdout)["steps"]:
            if step["phase"] not in ("build", "publish"):
                continue
            for action in step["actions"]:
                if "argv" in action:
                    subprocess.run(
                        action["argv"], cwd=self.root, env=self.env, capture_output=True, check=True
                    )
        for name in ("backend", "frontend", "bot"):
            ref = f"127.0.0.1:5000/acme/{APP}-{name}:{release}"
            digests = json.loads(subprocess.run(
                ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref],
                capture_output=True, text=True, check=True,
            ).stdout)  # fmt: skip
            digest = next(d for d in digests if d.startswith("127.0.0.1:5000/")).split("@")[1]
            images += ["--image", f"{name}={self.registry}/acme/{APP}-{name}@{digest}"]
        return images

    def deploy(self, release: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """A deploy, and then the drain it handed off: what a test checks next runs after."""
        result = self.cli(
            "deploy", "--branch", "develop", "--release", release, "--host", self.target,
            *self.images(release), *extra,
        )  # fmt: skip
        wait(lambda: drained(self), 90)
        return result

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--json", "--host", self.target)
        assert result.returncode == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        return data


@pytest.fixture(scope="module")
def cluster(testbed: Bed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    up = subprocess.run([str(CLUSTER), "up"], capture_output=True, text=True, check=False)
    if up.returncode != 0:
        pytest.fail(f"scripts/testbed-cluster up failed:\n{up.stderr}")
    env = dict(line.split("=", 1) for line in up.stdout.splitlines() if "=" in line)
    root = tmp_path_factory.mktemp("cluster-project")
    copy_project(ROOT, root)
    data = profiles.merged_data(ROOT / "swarm-deploy.local.yml")
    registry = env["CLUSTER_REGISTRY"]
    data["app"] = APP
    data["branches"] = [{"match": "develop", "port": PORT}]
    on_three_nodes(data)
    build = root / "build.yml"
    build.write_text(yaml.safe_dump(data, sort_keys=False))
    text = yaml.safe_dump(data, sort_keys=False).replace("127.0.0.1:5000", registry)
    config = root / "swarm-deploy.yml"
    config.write_text(text)
    cluster = Cluster(
        root, config, build, {**os.environ, "DOCKER_CONFIG": testbed.env["DEPLOYER_DOCKER_CONFIG"]},
        env["CLUSTER_TARGET"], registry, Path(testbed.env["TESTBED_DIR"]) / "cluster",
    )  # fmt: skip
    yield cluster
    if not os.environ.get("KEEP_CLUSTER"):  # set it to look at the cluster after a failure
        subprocess.run([str(CLUSTER), "down"], capture_output=True, check=False)


def answers(path: str = "/api/", tries: int = 60) -> dict[str, Any]:
    for _ in range(tries):
        try:
            response = httpx.get(f"http://{EDGE}:{PORT}{path}", timeout=3)
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"nothing answered on {EDGE}:{PORT}")


def placed(status: dict[str, Any], suffix: str) -> list[str]:
    (develop,) = status["branches"]
    (service,) = [s for s in develop["services"] if s["name"].endswith(suffix)]
    nodes: list[str] = service["nodes"]
    return nodes


def test_the_pipeline_deploys_to_three_nodes_through_the_manager(cluster: Cluster) -> None:
    result = cluster.deploy("m1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nginx runs" not in result.stderr
    info = answers()
    assert (info["colour"], info["version"]) == ("blue", "m1")
    status = cluster.status()
    backend = placed(status, "_backend")
    assert len(backend) == 2
    assert len(set(backend)) == 2, "max_per_node: 1 spreads the backend"
    assert placed(status, "edge_nginx") == ["node2"], "the edge runs on the edge-labelled node"
    postgres = next(s for s in status["shared"] if s["name"].endswith("_postgres"))
    assert postgres["nodes"] == ["node1"], "stateful services stay with their volumes"
    digest = re.search(r"gaiam-backend@(sha256:[0-9a-f]{64})", " ".join(cluster.images("m1")))
    assert digest is not None
    for node in backend:
        listing = cluster.node_docker(node, "image", "ls", "--digests", "--format", "{{.Digest}}")
        assert digest.group(1) in listing, f"{node} pulled the same bytes"


def test_the_engine_api_goes_through_one_ssh_forward_started_again_when_cut(
    cluster: Cluster,
) -> None:
    """The nodes' sshd forward a local socket (OpenSSH's default): a command's Engine API
    calls share one ssh connection, and when sshd cuts it, the next call starts it again
    on the same socket (the docker commands routed through it keep their address)."""
    swarm = Swarm(cluster.target, socket=str(cluster.socket_dir / "node1/docker.sock"))
    try:
        assert swarm.forward is not None, "the nodes' sshd forward the socket"
        url = swarm.forward.url
        assert swarm.node(swarm.info["Swarm"]["NodeID"])["Description"]["Hostname"] == "node1"
        subprocess.run(["pkill", "-f", "sshd: root@"], check=False)
        deadline = time.monotonic() + 10
        while swarm.forward.running:
            assert time.monotonic() < deadline, "sshd cut the forward's connection"
            time.sleep(0.1)
        assert len(swarm.nodes()) == 3, "read again through a forward started again"
        assert swarm.forward.url == url
    finally:
        swarm.close()
    assert not Path(url.removeprefix("unix://")).parent.exists(), "closed: its directory gone"


def test_streaming_images_without_a_registry_is_refused(cluster: Cluster) -> None:
    result = cluster.cli(
        "deploy", "--branch", "develop", "--release", "m1x", "--host", cluster.target,
        "--no-registry",
    )  # fmt: skip
    assert result.returncode == 2
    assert "a swarm of 3 nodes" in result.stderr


def manager_api(cluster: Cluster) -> docker.APIClient:
    return docker.APIClient(base_url=f"unix://{cluster.socket_dir}/node1/docker.sock")


def converged(cluster: Cluster) -> bool:
    """Every service of the app runs exactly its desired tasks, as the manager sees it."""
    api = manager_api(cluster)
    try:
        services = [s for s in api.services(status=True) if s["Spec"]["Name"].startswith(APP)]
        return all(
            s["ServiceStatus"]["RunningTasks"] == s["ServiceStatus"]["DesiredTasks"]
            for s in services
        )
    finally:
        api.close()


def node_state(cluster: Cluster, node: str) -> str:
    api = manager_api(cluster)
    try:
        state: str = api.inspect_node(node)["Status"]["State"]
        return state
    finally:
        api.close()


def wait(condition: Callable[[], bool], limit: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < limit, f"not within {limit:g}s"
        time.sleep(0.5)
    return time.monotonic() - started


def drained(cluster: Cluster) -> bool:
    """No drain job a deploy handed off (actions.HandOffDrain) is left on the cluster."""
    api = manager_api(cluster)
    try:
        return not api.services(filters={"label": "swarm-deploy.drain-of"})
    finally:
        api.close()


def colour_stacks(cluster: Cluster) -> set[str]:
    """The colour stacks that run once the last deploy's drain is done."""
    wait(lambda: drained(cluster), 90)
    api = manager_api(cluster)
    try:
        return {
            s["Spec"]["Labels"]["com.docker.stack.namespace"]
            for s in api.services()
            if s["Spec"]["Name"].startswith(f"{APP}-develop-")
            and not s["Spec"]["Name"].startswith(f"{APP}-develop-edge")
        }
    finally:
        api.close()


def test_blue_green_across_nodes_loses_no_request(cluster: Cluster) -> None:
    with Traffic(PORT, host=EDGE) as traffic:
        result = cluster.deploy("m2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (answers()["colour"], answers()["version"]) == ("green", "m2")
    assert traffic.failures("new", "keepalive") == {}
    print(f"\nblue/green across nodes: {traffic.outage()}")


def test_a_worker_lost_while_idle(cluster: Cluster) -> None:
    placement = placed(cluster.status(), "_backend")
    with Traffic(PORT, host=EDGE) as traffic:
        subprocess.run([str(CLUSTER), "cut", "3"], check=True)
        down_after = wait(lambda: node_state(cluster, "node3") == "down", 60)
        recovered = wait(lambda: converged(cluster) and off_node3(cluster), 120)
        answers()
    print(
        f"\nnode3 lost while idle (backend on {', '.join(placement)}): marked down after "
        f"{down_after:.1f}s, every service running its replicas elsewhere {recovered:.1f}s "
        f"later; {traffic.outage()}"
    )


def off_node3(cluster: Cluster) -> bool:
    """No running task of the app is on node3 any more, as the manager sees it."""
    status = cluster.status()
    services = status["shared"] + [s for b in status["branches"] for s in b["services"]]
    return all("node3" not in s["nodes"] for s in services)


def test_the_node_returns_and_nothing_is_duplicated(cluster: Cluster) -> None:
    subprocess.run([str(CLUSTER), "heal", "3"], check=True)
    back = wait(lambda: node_state(cluster, "node3") == "ready", 120)
    wait(lambda: converged(cluster), 60)
    status = cluster.status()
    for service in status["branches"][0]["services"]:
        assert len(service["nodes"]) == service["desired"], service
    print(f"\nnode3 back: ready after {back:.1f}s, nothing duplicated")


def test_a_worker_lost_during_the_gate(cluster: Cluster) -> None:
    before = answers()
    images = cluster.images("m3")
    with Traffic(PORT, host=EDGE) as traffic:
        proc = start_deploy(
            ["deploy", "--branch", "develop", "--release", "m3", "--host", cluster.target,
             *images, "--config", str(cluster.config)],
            cluster.root, cluster.env,
        )  # fmt: skip
        until_step(proc, "colour")
        subprocess.run([str(CLUSTER), "cut", "3"], check=True)
        _, errors = proc.communicate(timeout=600)
    after = answers()
    stacks = colour_stacks(cluster)
    assert len(stacks) == 1, f"never both colours half-live: {stacks}"
    if proc.returncode == 0:
        outcome = f"completed on the remaining nodes ({after['colour']} {after['version']})"
        assert after["version"] == "m3"
    else:
        outcome = f"rolled back, {before['colour']} stays live: {errors.splitlines()[0]}"
        assert proc.returncode == 1
        assert "rolled back" in errors
        assert (after["colour"], after["version"]) == (before["colour"], before["version"])
    print(f"\nnode3 lost during the gate: the deploy {outcome}; {traffic.outage()}")
    subprocess.run([str(CLUSTER), "heal", "3"], check=True)
    wait(lambda: node_state(cluster, "node3") == "ready", 120)


def test_a_later_deploy_rebalances(cluster: Cluster) -> None:
    result = cluster.deploy("m4")
    assert result.returncode == 0, result.stdout + result.stderr
    backend = placed(cluster.status(), "_backend")
    assert len(set(backend)) == 2
    assert converged(cluster)
    print(f"\nafter the node returned, a deploy placed the backend on {', '.join(backend)}")
