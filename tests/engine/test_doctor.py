"""`doctor` on the real engine: the test bed passes (over its sshd), and each of a
missing node label, a key the host refuses and an engine not in swarm mode fails with
its fix named. doctor only reads: none of these tests changes the test bed."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.engine.conftest import PORTS, Bed, Project

SSH = "ssh://root@127.0.0.1:2222"
FIX = " " * 21 + "fix: "


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def doctor_with(
    project: Project, env: dict[str, str], host: str
) -> subprocess.CompletedProcess[str]:
    """`doctor` with the tests' config, in an environment of the test's own."""
    command = shutil.which("swarm-deploy")
    assert command is not None
    return subprocess.run(
        [command, "doctor", "--host", host, "--config", str(project.config)],
        cwd=project.root, env={**project.env, **env}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def node_hostname() -> str:
    return subprocess.run(
        ["docker", "info", "--format", "{{.Name}}"], capture_output=True, text=True, check=True
    ).stdout.strip()


def variant(project: Project, name: str, change: dict[str, object]) -> Path:
    """The tests' config with `change` merged one level deep."""
    data = yaml.safe_load(project.config.read_text())
    for key, value in change.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = project.root / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_test_bed_passes_over_ssh(testbed: Bed, project: Project) -> None:
    assert testbed.ssh_target == SSH
    result = project.cli("doctor", "--host", SSH)
    out = lines(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out[0] == f"doctor: {SSH}"
    assert out[1].startswith("ok      docker cli   docker CLI ")
    assert (
        out[2]
        == "ok      ssh          root@127.0.0.1 port 2222 answers with a key, its host key known"
    )
    # the single-node bed's sshd forwards nothing (the three nodes' do: test_cluster.py)
    assert out[3] == (
        "warn    ssh forward  root@127.0.0.1 does not forward /var/run/docker.sock: each "
        "Engine API call opens an ssh session of its own (0.1 s or more each), so deploys are "
        "slower"
    )
    assert out[5].startswith("ok      docker       Docker Engine 28.")
    assert out[6] == f"ok      swarm        {SSH} is a swarm manager"
    assert out[7] == "ok      node labels  the config's placement names no node label"
    # the tests' registry takes pushes and pulls without a login
    assert out[8] == (
        "warn    registry     no login for 127.0.0.1:5000 in "
        f"{testbed.env['DEPLOYER_DOCKER_CONFIG']}/config.json"
    )
    ports = [line for line in out if " ports " in line]
    assert len(ports) == len(PORTS)
    assert all(line.startswith("ok      ports        branches[") for line in ports), ports
    assert [line[:20] for line in out if line[8:20].strip() in ("memory", "disk", "ipvs")] == [
        "ok      memory      ", "ok      disk        ", "ok      ipvs        "
    ]  # fmt: skip
    assert out[-1] == f"ready: nothing blocks a deploy to {SSH} (2 warning(s))"


def test_a_registry_login_is_seen_with_its_user(testbed: Bed, project: Project) -> None:
    config = variant(project, "doctor-login.yml", {"registry": f"{testbed.auth_registry}/acme"})
    result = project.cli("doctor", "--host", SSH, config=config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"ok      registry     logged in to {testbed.auth_registry} as deployer (a password: "
        "no expiry the client can see)"
    ) in lines(result)


def test_a_label_no_node_has_blocks_with_the_command_that_sets_it(project: Project) -> None:
    config = variant(
        project, "doctor-label.yml", {"swarm": {"edge_node_label": "swarm-deploy.doctor-edge"}}
    )
    result = project.cli("doctor", "--host", SSH, config=config)
    host = node_hostname()
    out = lines(result)
    assert result.returncode == 1, result.stdout + result.stderr
    at = out.index(
        "BLOCKER node labels  swarm/edge_node_label: no node has swarm-deploy.doctor-edge=true "
        f"(nodes: {host})"
    )
    assert out[at + 1] == (
        f"{FIX}docker node update --label-add swarm-deploy.doctor-edge=true {host}"
    )
    # the registry without a login, and the single-node bed's sshd that forwards nothing
    assert out[-1].startswith("1 blocker(s), 2 warning(s): a deploy to ")


def test_a_key_the_host_refuses_blocks_with_where_to_put_it(
    testbed: Bed, project: Project, tmp_path: Path
) -> None:
    """The user's ssh config names a key the host does not have: ssh here is OpenSSH
    itself, given that config (-F) as ~/.ssh/config would give it."""
    key = tmp_path / "id_other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ssh_dir = Path(testbed.env["TESTBED_DIR"]) / "ssh"
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host 127.0.0.1\n"
        f"    IdentityFile {key}\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {ssh_dir / 'known_hosts'}\n"
        "    StrictHostKeyChecking yes\n"
        "    ControlPath none\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real = shutil.which("ssh")
    assert real is not None
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {real} -F {config} "$@"\n')
    wrapper.chmod(0o755)
    result = doctor_with(project, {"PATH": f"{bin_dir}:{project.env['PATH']}"}, SSH)
    assert result.returncode == 1, result.stdout + result.stderr
    assert lines(result)[2:] == [
        "BLOCKER ssh          root@127.0.0.1: root@127.0.0.1: Permission denied (publickey).",
        f"{FIX}the host refused every key offered: name your key for it in "
        "~/.ssh/config (`Host 127.0.0.1` / `IdentityFile ~/.ssh/KEY`) and put KEY.pub in the "
        "user's ~/.ssh/authorized_keys there (`ssh-copy-id -p 2222 root@127.0.0.1`)",
        "1 blocker(s), 0 warning(s): a deploy to ssh://root@127.0.0.1:2222 would fail; fix the "
        "blockers and run doctor again",
    ]


@pytest.fixture
def swarmless_engine() -> Iterator[str]:
    """A dockerd of this test's own, never in swarm mode, on its own socket, in a network
    namespace of its own with no bridge and no iptables rules, so the test bed's dockerd is
    not touched (`--bridge none` deletes docker0 of the namespace it starts in: in this
    machine's own, every container of the test bed would lose its network). Stopped and
    removed after."""
    links = host_links()
    root = Path(tempfile.mkdtemp(prefix="sd-doctor-", dir="/tmp"))
    socket = f"unix://{root}/docker.sock"
    log = (root / "dockerd.log").open("w")
    daemon = subprocess.Popen(
        [
            "unshare", "--net", "--",
            "dockerd", "--data-root", f"{root}/data", "--exec-root", f"{root}/exec",
            "--pidfile", f"{root}/docker.pid", "--host", socket,
            "--bridge", "none", "--iptables=false", "--ip-masq=false",
            "--containerd-namespace", "swarm-deploy-doctor",
            "--containerd-plugins-namespace", "swarm-deploy-doctor-plugins",
        ],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(120):
            ready = subprocess.run(
                ["docker", "--host", socket, "info"], capture_output=True, check=False
            )
            if ready.returncode == 0:
                break
            assert daemon.poll() is None, (root / "dockerd.log").read_text()
            time.sleep(0.5)
        else:
            pytest.fail(f"the test's dockerd did not start: {(root / 'dockerd.log').read_text()}")
        yield socket
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
    kept = links & {"docker0", "docker_gwbridge"}  # the test bed engine's own bridges
    assert kept <= host_links(), f"the test's dockerd removed {kept - host_links()}"


def host_links() -> set[str]:
    """The names of this machine's network interfaces."""
    shown = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    return {line.split(":")[1].strip().split("@")[0] for line in shown.stdout.splitlines()}


def test_an_engine_not_in_swarm_mode_blocks_with_swarm_init(
    project: Project, swarmless_engine: str
) -> None:
    result = doctor_with(project, {"DOCKER_HOST": swarmless_engine}, "local")
    out = lines(result)
    assert result.returncode == 1, result.stdout + result.stderr
    at = out.index("BLOCKER swarm        local is not part of a swarm (state: inactive)")
    assert out[at + 1] == f"{FIX}run `docker swarm init` there first"
    # what needs a manager (node labels, the ports services publish) is not read
    assert not [line for line in out if " node labels " in line or " ports " in line]
