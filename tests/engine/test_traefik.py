"""Traefik in front of every branch, with certificates from a real ACME server.

The shared stack runs Traefik (built from its Go module by scripts/testbed-go) with its
ACME resolver pointed at Pebble, Let's Encrypt's test CA. Pebble validates HTTP-01 the
way Let's Encrypt does: it looks the branch's host up (in Pebble's challenge test server,
which answers with Traefik's address on the public network) and fetches the token from
port 80 there. Clients send to Traefik's ports published on 127.0.0.1 with the hosts'
names (SNI and Host) and check each certificate against the root Pebble issues from,
fetched from Pebble's management API.

Pebble is not part of the product's stacks: the tests start it once the first deploy has
made the public network it must join. Traefik orders a certificate it lacks again at each
change of its routing configuration (pkg/provider/acme/provider.go, watchNewDomains), so
the second branch's deploy orders both hosts' certificates.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from docker.models.containers import Container

from swarm_deploy.naming import BranchNames, SharedNames
from tests.engine.conftest import Bed, Https, Project, Traffic, app_project
from tests.engine.test_metrics import query

APP = "gaiatls"
DOMAIN = "gaiatls.test"
HOSTS = {"develop": "develop", "feature/x": "featx", "feature/y": "featy", "feature/z": "featz"}
HTTP_PORT, HTTPS_PORT = 18480, 18443
PEBBLE_PORT, CHALLTESTSRV_PORT = 18415, 18455
# bounded waits: an order takes seconds; one that failed (Pebble not yet reachable) is tried
# again at Traefik's next change of routing, up to a minute later
CERTIFICATE_WAIT = 180.0
# the root of the certificate of Pebble's own directory and management API, in its image
MINICA = "/etc/pebble/pebble.minica.pem"


@dataclass
class Acme:
    """Pebble and its challenge test server, on the app's public network."""

    containers: list[Container]
    root: Path

    def remove(self) -> None:
        for container in self.containers:
            container.remove(force=True)


@dataclass(frozen=True)
class World:
    project: Project
    acme: Acme
    # seconds from the start of feature/x's deploy to its certificate being served
    issued_after: float
    # what feature/x's deploy printed
    deployed: str = ""

    def https(self, branch: str) -> Https:
        return Https(host(branch), self.acme.root)


def host(branch: str) -> str:
    return f"{HOSTS[branch]}.{DOMAIN}"


def verified(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


def get_https(world: World, branch: str, path: str = "/api/", **headers: str) -> httpx.Response:
    """GET https://<host>/PATH sent to Traefik on 127.0.0.1, checked against Pebble's root."""
    with httpx.Client(verify=verified(world.acme.root), timeout=5) as client:
        return client.get(
            f"https://127.0.0.1:{HTTPS_PORT}{path}",
            headers={"Host": host(branch), **headers},
            extensions={"sni_hostname": host(branch)},
        )


def served(world: World, branch: str, deadline: float) -> httpx.Response:
    """The branch's first 200 over a verified HTTPS connection, retried until `deadline`:
    Traefik serves its default certificate until the host's is issued, and answers 404
    until its Swarm provider has seen the branch's edge (it polls every 15 s)."""
    while True:
        try:
            response = get_https(world, branch)
            if response.status_code == 200:
                return response
            problem = f"{response.status_code} {response.text[:80]!r}"
        except (httpx.ConnectError, httpx.ReadError) as error:
            problem = str(error)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{host(branch)}: no 200 with a certificate of Pebble's: {problem}"
            )
        time.sleep(1)


def start_acme(
    client: docker.DockerClient, image: str, public_network: str, at: str, tmp: Path
) -> Acme:
    """Pebble and pebble-challtestsrv on a bridge of their own (published on 127.0.0.1),
    joined to the public network; every host name resolves to `at` (Traefik)."""
    bridge = f"{APP}-acme"
    client.networks.create(bridge, driver="bridge")
    containers: list[Container] = []
    acme = Acme(containers, Path())
    try:
        challtestsrv = client.containers.run(
            image,
            name=f"{APP}-challtestsrv",
            entrypoint=["pebble-challtestsrv"],
            command=[
                "-management", ":8055", "-dnsserver", ":8053", "-defaultIPv4", at,
                "-defaultIPv6", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
            ],
            network=bridge,
            ports={"8055/tcp": ("127.0.0.1", CHALLTESTSRV_PORT)},
            detach=True,
        )  # fmt: skip
        containers.append(challtestsrv)
        challtestsrv.reload()
        dns = challtestsrv.attrs["NetworkSettings"]["Networks"][bridge]["IPAddress"]
        pebble = client.containers.run(
            image,
            name=f"{APP}-pebble",
            command=["-config", "/etc/pebble/config.json", "-dnsserver", f"{dns}:8053"],
            # no random sleeps before validating, no nonces refused at random
            environment={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
            network=bridge,
            ports={"15000/tcp": ("127.0.0.1", PEBBLE_PORT)},
            detach=True,
        )
        containers.append(pebble)
        public = client.networks.get(public_network)
        public.connect(pebble, aliases=["pebble"])
        # where Traefik's exec DNS provider writes DNS-01 records (challtestsrv-exec)
        public.connect(challtestsrv, aliases=["challtestsrv"])
        acme.root = pebble_root(pebble, tmp)
        return acme
    except BaseException:
        acme.remove()
        raise


def pebble_root(pebble: Container, tmp: Path) -> Path:
    """The root Pebble issues from (new at each start), from its management API, checked
    against the test root of Pebble's own certificate (in its image)."""
    minica = tmp / "pebble-minica.pem"
    minica.write_bytes(pebble.exec_run(["cat", MINICA]).output)
    for _ in range(50):
        try:
            url = f"https://127.0.0.1:{PEBBLE_PORT}/roots/0"
            response = httpx.get(url, verify=verified(minica))
            response.raise_for_status()
            root = tmp / "pebble-root.pem"
            root.write_text(response.text)
            return root
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("Pebble's management API did not answer within 10 s")


def traefik_address(client: docker.DockerClient, shared: SharedNames) -> str:
    """Traefik's address on the public network, where Pebble validates HTTP-01."""
    (container,) = client.containers.list(
        filters={"label": f"com.docker.swarm.service.name={shared.service('traefik')}"}
    )
    networks = container.attrs["NetworkSettings"]["Networks"]
    return str(networks[shared.public_network]["IPAddress"])


@pytest.fixture(scope="module")
def world(testbed: Bed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    minica = tmp_path_factory.mktemp("minica") / "pebble-minica.pem"
    minica.write_bytes(
        subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "cat", testbed.env["PEBBLE_IMAGE"], MINICA],
            capture_output=True, check=True, timeout=60,
        ).stdout
    )  # fmt: skip

    def shape(data: dict[str, Any]) -> None:
        # the branches the HTTP-01 tests deploy; feature/y and feature/z, the wildcard's
        data["domain"] = DOMAIN
        data["shared"]["traefik"] = {
            "image": testbed.env["TRAEFIK_IMAGE"],
            "acme_email": f"ops@{DOMAIN}",
            "ports": {"http": HTTP_PORT, "https": HTTPS_PORT},
            # Pebble's directory, whose HTTPS is signed by Pebble's test root
            "acme": {"ca_server": "https://pebble:14000/dir", "ca_certificate": "pebble_root"},
        }
        data["secrets"]["pebble_root"] = {"file": str(minica)}
        data["branches"] = [{"match": branch, "host": h} for branch, h in HOSTS.items()]

    with app_project(testbed, tmp_path_factory.mktemp("tls"), APP, shape) as project:
        first = project.deploy("develop", "t1")
        assert first.returncode == 0, first.stdout + first.stderr
        shared = SharedNames(APP)
        client = docker.from_env()
        acme = start_acme(
            client,
            testbed.env["PEBBLE_IMAGE"],
            shared.public_network,
            traefik_address(client, shared),
            tmp_path_factory.mktemp("acme"),
        )
        try:
            began = time.monotonic()
            # the plan, read from the target: a new host is a new certificate
            plan = project.cli("plan", "--read-target", "--branch", "feature/x", "--release", "t1")
            assert (
                "  certs    1 new: featx.gaiatls.test (a certificate per host, by HTTP-01); "
                "2 of 50 this week\n" in plan.stdout
            ), plan.stdout + plan.stderr
            second = project.deploy("feature/x", "t1")
            assert second.returncode == 0, second.stdout + second.stderr
            world = World(project, acme, 0.0, second.stdout)
            served(world, "feature/x", began + CERTIFICATE_WAIT)
            issued = round(time.monotonic() - began, 1)
            served(world, "develop", began + CERTIFICATE_WAIT)
            yield World(project, acme, issued, second.stdout)
        finally:
            acme.remove()
            client.close()


def test_each_branch_is_served_over_https_with_a_certificate_pebble_issued(world: World) -> None:
    for branch in ("develop", "feature/x"):
        response = get_https(world, branch)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == "t1"
    print(f"feature/x: deploy start to its certificate served in {world.issued_after}s")


def test_the_deploy_prints_the_url_that_answers(world: World) -> None:
    """The URL names the HTTPS port Traefik publishes (not 443 here): the one the test
    above reached."""
    assert f"at https://{host('feature/x')}:{HTTPS_PORT}" in world.deployed, world.deployed


def certificate_names(world: World, branch: str) -> list[str]:
    """The DNS names of the certificate Traefik serves for the branch's host, verified."""
    context = verified(world.acme.root)
    with (
        socket.create_connection(("127.0.0.1", HTTPS_PORT)) as raw,
        context.wrap_socket(raw, server_hostname=host(branch)) as tls,
    ):
        names = [value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"]
    return sorted(names)


def test_the_certificate_names_the_branch_host_alone(world: World) -> None:
    for branch in ("develop", "feature/x"):
        assert certificate_names(world, branch) == [host(branch)]


def test_http_redirects_to_https(world: World) -> None:
    response = httpx.get(
        f"http://127.0.0.1:{HTTP_PORT}/api/?q=1", headers={"Host": host("develop")}
    )
    assert response.status_code in (301, 308), response.text
    # the published HTTPS port is not 443 here: the redirect names it
    assert response.headers["location"] == f"https://{host('develop')}:{HTTPS_PORT}/api/?q=1"


def test_a_host_no_branch_has_gets_no_certificate_of_a_branch(world: World) -> None:
    with (
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        httpx.Client(verify=verified(world.acme.root), timeout=5) as client,
    ):
        client.get(
            f"https://127.0.0.1:{HTTPS_PORT}/api/",
            headers={"Host": f"nobody.{DOMAIN}"},
            extensions={"sni_hostname": f"nobody.{DOMAIN}"},
        )


def test_the_preview_route_is_not_reachable_through_traefik(world: World) -> None:
    live = get_https(world, "develop").headers["x-swarm-deploy-colour"]
    idle = {"blue": "green", "green": "blue"}[live]
    # the header the pipeline's preview server reads is ignored on the public server
    response = get_https(world, "develop", **{"X-Swarm-Deploy-Colour": idle})
    assert response.headers["x-swarm-deploy-colour"] == live
    # and the preview server listens on the nginx container's loopback only: from the
    # public network (where Pebble sits), its port is closed
    client = docker.from_env()
    try:
        (pebble,) = [c for c in world.acme.containers if c.name == f"{APP}-pebble"]
        edge = SharedNames(APP).public_network
        nginx = [
            c
            for c in client.containers.list(
                filters={"label": "swarm-deploy.service=nginx"}, ignore_removed=True
            )
            if c.labels.get("swarm-deploy.app") == APP
        ]
        assert nginx
        for container in nginx:
            address = container.attrs["NetworkSettings"]["Networks"][edge]["IPAddress"]
            result = pebble.exec_run(
                ["curl", "-sS", "-o", "/dev/null", "--max-time", "3", f"http://{address}:8081/"]
            )
            assert result.exit_code == 7, result.output  # 7: failed to connect
            result = pebble.exec_run(
                [
                    "curl",
                    "-sS",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "3",
                    f"http://{address}:80/healthz",
                ]
            )
            assert result.exit_code == 0, result.output
    finally:
        client.close()


def test_the_shared_prometheus_scrapes_traefik(world: World) -> None:
    deadline = time.monotonic() + 90  # three scrape intervals (15 s) and Prometheus's start
    while not (found := query('traefik_entrypoint_requests_total{entrypoint="websecure"}', APP)):
        assert time.monotonic() < deadline, (
            f"no Traefik request counter in 90 s: {query('up', APP)}"
        )
        time.sleep(3)
    assert {series["metric"]["job"] for series in found} == {"traefik"}
    assert sum(float(series["value"][1]) for series in found) > 0


def test_blue_green_through_traefik_loses_no_request(world: World) -> None:
    with Traffic(HTTPS_PORT, https=world.https("develop")) as traffic:
        for release in ("t2", "t3"):
            result = world.project.deploy("develop", release)
            assert result.returncode == 0, result.stdout + result.stderr
    print(f"two deploys of develop through Traefik (https): {traffic.outage()}")
    assert traffic.count("new") > 100
    assert traffic.count("keepalive") > 50
    assert traffic.failures("new", "keepalive") == {}
    assert get_https(world, "develop").json()["version"] == "t3"


# what the load keeps running after the kill: Traefik's health check (edge/health_interval
# 1 s), Swarm's restart of the task (1 s delay) and the provider's next poll (15 s)
AFTER_KILL = 20.0
# by then the health check (every 1 s, 500 ms to answer) has taken the dead task out of
# Traefik's balancer, with room for a loaded machine: no request sent later may fail
CAUGHT = 5.0


def test_a_killed_nginx_task_fails_only_requests_around_the_kill(world: World) -> None:
    """Behind Traefik each branch's nginx runs as two tasks; Traefik checks each one's
    /healthz (every edge/health_interval) and sends a request it could not deliver to
    another task, after edge/dial_timeout, up to edge/retry_attempts times.

    Not zero: SIGKILL loses what the killed nginx had already received (Traefik 3.6 never
    resends a delivered request: 502s), and until the health check marks the task down a
    request's every try may pick it (504s). Measured: 0 of 4,225 twice, 2 of 3,630, 5 of
    3,645 (docs/request-path.md); with one nginx, 229 of 989 over 1.8 s. What holds: each
    failure is Traefik's answer, none a client left waiting, and none after the health
    check has caught up."""
    edge = BranchNames.derive(APP, "develop").edge_service
    client = docker.from_env()
    try:
        tasks = client.containers.list(filters={"label": f"com.docker.swarm.service.name={edge}"})
        assert len(tasks) == 2, [task.name for task in tasks]
        with Traffic(HTTPS_PORT, https=world.https("develop")) as traffic:
            killed_at = time.time()
            tasks[0].kill()
            time.sleep(AFTER_KILL)
    finally:
        client.close()
    print(f"one of develop's two nginx tasks killed, behind Traefik: {traffic.outage()}")
    assert traffic.count("new") > 1000
    failed = traffic.failed("new") + traffic.failed("keepalive")
    not_traefiks = [s for s in failed if s.status not in (502, 504)]
    assert not_traefiks == [], f"killed at {killed_at:.2f}: {Traffic.tally(not_traefiks)}"
    late = [s for s in failed if s.t > killed_at + CAUGHT]
    assert late == [], f"killed at {killed_at:.2f}: {Traffic.tally(late)}"
    assert get_https(world, "develop").status_code == 200


def test_dns_01_gives_every_branch_one_wildcard_certificate(world: World) -> None:
    """Switched to DNS-01 (Traefik's exec provider writes the TXT record into Pebble's
    challenge test server, which Pebble asks), Traefik orders one certificate for the
    domain and *.domain; a branch deployed after it orders none and is served at once."""
    data = yaml.safe_load(world.project.config.read_text())
    data["shared"]["traefik"]["acme"].update(
        challenge="dns",
        dns={
            "provider": "exec",
            "env": {
                "EXEC_PATH": "/usr/local/bin/challtestsrv-exec",
                "CHALLTESTSRV_URL": "http://challtestsrv:8055",
            },
            # Pebble reads the record from challtestsrv at once: no public DNS to wait for
            "disable_checks": True,
        },
    )
    wildcard = world.project.write_config("wildcard.yml", {"shared": data["shared"]})
    began = time.monotonic()
    first = world.project.deploy("feature/y", "w1", "--update-shared", config=wildcard)
    assert first.returncode == 0, first.stdout + first.stderr
    deployed = time.monotonic()
    response = served(world, "feature/y", deployed + CERTIFICATE_WAIT)
    assert response.json()["version"] == "w1"
    print(
        f"wildcard: deploy (Traefik restarted by DNS-01) {deployed - began:.1f}s, then "
        f"the certificate served in {time.monotonic() - deployed:.1f}s"
    )
    assert certificate_names(world, "feature/y") == [f"*.{DOMAIN}", DOMAIN]

    plan = world.project.cli(
        "plan", "--read-target", "--branch", "feature/z", "--release", "w1", config=wildcard
    )
    assert f"  certs    none new: the wildcard certificate covers {host('feature/z')}\n" in (
        plan.stdout
    ), plan.stdout + plan.stderr
    second = world.project.deploy("feature/z", "w1", config=wildcard)
    assert second.returncode == 0, second.stdout + second.stderr
    # served with the certificate Traefik holds already (once its provider sees the edge)
    began = time.monotonic()
    assert served(world, "feature/z", began + CERTIFICATE_WAIT).json()["version"] == "w1"
    print(f"feature/z: deploy end to its first 200 in {time.monotonic() - began:.1f}s")
    assert certificate_names(world, "feature/z") == [f"*.{DOMAIN}", DOMAIN]
