"""doctor's decisions, one per check, with the exact message and fix; the parsers of what
the host and docker's config.json say; and `decide`, which checks what it could read."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from swarm_deploy import cli_output, commands, doctor, doctor_facts
from swarm_deploy.config import Config
from swarm_deploy.config_settings import SwarmSettings
from swarm_deploy.doctor import Finding, HostFacts, Login, Read, SshProbe
from swarm_deploy.facts import Engine, Node, Service
from swarm_deploy.naming import label
from swarm_deploy.usecases import Diagnosis

SSH = "ssh://deploy@vm1:2200"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
ENGINE = Engine("28.5.2", "/var/lib/docker", 8 * 2**30, "6.1.0-13-amd64")
HOST = HostFacts(50 * 2**30, frozenset({22}), ipvs_loaded=False, ipvs_module=False)
MANAGER = {"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}}


def node(name: str, role: str = "manager", **labels: str) -> Node:
    return Node(f"id-{name}", name, "10.0.0.1", MappingProxyType(labels), role, "active")


def service(name: str, port: int, **labels: str) -> Service:
    return Service(
        id=f"id-{name}", name=name, labels=MappingProxyType(labels), image="nginx",
        replicas=1, running=1, desired=1, created_at=NOW, updated_at=NOW,
        update_state=None, update_message=None, secrets=frozenset(), ports=(port,),
    )  # fmt: skip


def jwt(exp: datetime) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"exp": int(exp.timestamp())}).encode())
    return f"eyJhbGciOiJIUzI1NiJ9.{claims.decode().rstrip('=')}.c2lnbmF0dXJl"


# --- ssh


def test_ssh_argv_runs_the_command_quoted_without_a_prompt() -> None:
    assert commands.ssh(SSH, "df", "-Pk", "/var/lib/docker dir") == [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", "2200",
        "--", "deploy@vm1", "df -Pk '/var/lib/docker dir'",
    ]  # fmt: skip
    assert commands.on_host("local", "df", "-Pk", "/") == ["df", "-Pk", "/"]
    assert commands.ssh_address("ssh://vm1") == ("vm1", "22")


def test_ssh_local_and_answering() -> None:
    assert doctor.ssh("local", None) == Finding("ssh", "ok", "the local engine: no ssh")
    assert doctor.ssh(SSH, SshProbe(0, "")) == Finding(
        "ssh", "ok", "deploy@vm1 port 2200 answers with a key, its host key known"
    )


def test_ssh_refused_key_names_where_the_key_goes() -> None:
    probe = SshProbe(255, "deploy@vm1: Permission denied (publickey).\n")
    assert doctor.ssh(SSH, probe) == Finding(
        "ssh", "blocker", "deploy@vm1: deploy@vm1: Permission denied (publickey).",
        "the host refused every key offered: name your key for it in ~/.ssh/config "
        "(`Host vm1` / `IdentityFile ~/.ssh/KEY`) and put KEY.pub in the user's "
        "~/.ssh/authorized_keys there (`ssh-copy-id -p 2200 deploy@vm1`)",
    )  # fmt: skip


def test_ssh_unknown_host_key_names_keyscan_and_the_fingerprint_check() -> None:
    said = "No ED25519 host key is known for [vm1]:2200 and you have requested strict checking."
    probe = SshProbe(255, f"{said}\nHost key verification failed.\n")
    assert doctor.ssh(SSH, probe) == Finding(
        "ssh", "blocker", "deploy@vm1: Host key verification failed.",
        "add the host's key to ~/.ssh/known_hosts: `ssh-keyscan -p 2200 vm1 >> "
        "~/.ssh/known_hosts`, after checking its fingerprint on the VM's console "
        "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)",
    )  # fmt: skip


def test_ssh_changed_host_key_and_unreachable_host() -> None:
    changed = SshProbe(255, "@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\n")
    assert doctor.ssh(SSH, changed) == Finding(
        "ssh", "blocker", "deploy@vm1: its host key changed",
        "if the VM was rebuilt, check its new key on its console, then "
        "`ssh-keygen -R '[vm1]:2200'` and add the new one to ~/.ssh/known_hosts",
    )  # fmt: skip
    refused = SshProbe(255, "ssh: connect to host vm1 port 2200: Connection refused\n")
    assert doctor.ssh(SSH, refused) == Finding(
        "ssh", "blocker", "deploy@vm1: ssh: connect to host vm1 port 2200: Connection refused",
        "check the address and that sshd listens on port 2200: `ssh -p 2200 deploy@vm1 true` "
        "should print nothing and exit 0",
    )  # fmt: skip


# --- the docker CLI here, and the engine


def test_the_docker_cli_here() -> None:
    assert doctor.docker_client("28.2.2") == Finding("docker cli", "ok", "docker CLI 28.2.2 here")
    assert doctor.docker_client(None) == Finding(
        "docker cli", "blocker", "no docker CLI on PATH here",
        "install the docker CLI on the deploying machine (README: the version proven); a "
        "deploy runs `docker stack deploy` through it",
    )  # fmt: skip


def test_docker_version() -> None:
    assert doctor.docker_version(ENGINE) == Finding("docker", "ok", "Docker Engine 28.5.2")
    assert doctor.docker_version(replace(ENGINE, version="25.0.0")).level == "ok"
    assert doctor.docker_version(replace(ENGINE, version="20.10.24+dfsg1")) == Finding(
        "docker", "warn",
        "Docker Engine 20.10.24+dfsg1 ignores HEALTHCHECK --start-interval: a new task is "
        "healthy, and a deploy can go live, one --interval after it starts at the earliest",
        "upgrade docker on the target to 25 or newer for faster deploys",
    )  # fmt: skip
    assert doctor.docker_version(replace(ENGINE, version="19.03.15")) == Finding(
        "docker", "blocker", "Docker Engine 19.03.15, older than 20.10",
        "upgrade docker on the target to 20.10 or newer (README: the versions proven)",
    )  # fmt: skip
    assert doctor.docker_version(replace(ENGINE, version="dev")).level == "warn"


def test_swarm_role() -> None:
    assert doctor.swarm_role(SSH, MANAGER) == Finding("swarm", "ok", f"{SSH} is a swarm manager")
    inactive = {"Swarm": {"LocalNodeState": "inactive"}}
    assert doctor.swarm_role(SSH, inactive) == Finding(
        "swarm", "blocker", f"{SSH} is not part of a swarm (state: inactive)",
        "run `docker swarm init` there first",
    )  # fmt: skip
    worker = {"Swarm": {"LocalNodeState": "active", "ControlAvailable": False}}
    assert doctor.swarm_role(SSH, worker) == Finding(
        "swarm", "blocker", f"{SSH} is a swarm worker", "deploy through a manager node"
    )


# --- node labels


def labelled(example: Config, **settings: str) -> Config:
    return replace(example, swarm=SwarmSettings(**settings))


def test_no_label_in_the_config_needs_none(example: Config) -> None:
    assert doctor.node_labels(example, [node("vm1")]) == [
        Finding("node labels", "ok", "the config's placement names no node label")
    ]


def test_a_label_no_node_has_is_a_blocker_with_the_command(example: Config) -> None:
    config = labelled(example, edge_node_label="edge")
    assert doctor.node_labels(config, [node("vm1"), node("vm2", "worker")]) == [
        Finding(
            "node labels", "blocker",
            "swarm/edge_node_label: no node has edge=true (nodes: vm1, vm2)",
            "docker node update --label-add edge=true vm1",
        )
    ]  # fmt: skip
    assert doctor.node_labels(config, [node("vm1"), node("vm2", "worker", edge="true")]) == [
        Finding("node labels", "ok", "swarm/edge_node_label: edge=true on vm2")
    ]


def test_the_data_label_on_a_worker_only_blocks_prometheus_and_traefik(example: Config) -> None:
    config = labelled(example, data_node_label="data")
    assert {"prometheus", "traefik"} <= set(config.shared)
    assert doctor.node_labels(config, [node("vm1"), node("vm2", "worker", data="true")]) == [
        Finding(
            "node labels", "blocker",
            "swarm/data_node_label: no manager has data=true (nodes: vm1, vm2)",
            "docker node update --label-add data=true vm1 (a manager: Prometheus and Traefik "
            "run on one)",
        )
    ]  # fmt: skip


# --- the registry


def test_no_login_is_a_warning_a_password_has_no_visible_end(example: Config) -> None:
    none = Login("ghcr.io", "/home/u/.docker/config.json")
    assert doctor.registry(example, none, NOW) == Finding(
        "registry", "warn", "no login for ghcr.io in /home/u/.docker/config.json",
        "if ghcr.io needs one: `docker login ghcr.io` with a token that lasts (tasks Swarm "
        "reschedules later pull with it); a registry open to pulls needs none",
    )  # fmt: skip
    password = Login("ghcr.io", "c", "password", "ci-bot")
    assert doctor.registry(example, password, NOW) == Finding(
        "registry",
        "ok",
        "logged in to ghcr.io as ci-bot (a password: no expiry the client can see)",
    )
    helper = Login("ghcr.io", "c", "pass")
    assert doctor.registry(example, helper, NOW) == Finding(
        "registry", "ok", "logged in to ghcr.io (kept by docker-credential-pass: its lifetime "
        "is the helper's)",
    )  # fmt: skip


def test_a_token_that_ended_blocks_one_ending_soon_warns(example: Config) -> None:
    ended = Login("ghcr.io", "c", "password", "ci", NOW - timedelta(minutes=1))
    assert doctor.registry(example, ended, NOW) == Finding(
        "registry", "blocker", "the login to ghcr.io as ci expired at 2026-12-01 11:59 UTC",
        "`docker login ghcr.io` again, with a token that lasts",
    )  # fmt: skip
    soon = replace(ended, expires=NOW + timedelta(hours=2))
    assert doctor.registry(example, soon, NOW) == Finding(
        "registry", "warn", "the login to ghcr.io as ci expires at 2026-12-01 14:00 UTC",
        "use a token that lasts: a task Swarm reschedules after that cannot pull",
    )  # fmt: skip
    later = replace(ended, expires=NOW + timedelta(days=30))
    assert doctor.registry(example, later, NOW).level == "ok"


def test_a_workflow_token_is_named_as_one_that_ends_with_its_job() -> None:
    assert doctor.registry_token({"SWARM_DEPLOY_REGISTRY_TOKEN": "ghp_x"}) is None
    assert doctor.registry_token({"SWARM_DEPLOY_REGISTRY_TOKEN": "ghs_x"}) == (
        "the registry token looks like a workflow's GITHUB_TOKEN (ghs_...), which "
        "expires with the job: tasks the Swarm reschedules later could not pull. "
        "Use a token that lasts (a personal access token with read:packages)."
    )


def test_docker_config_json_gives_the_user_the_helper_and_a_jwt_end() -> None:
    auth = base64.b64encode(f"ci:{jwt(NOW)}".encode()).decode()
    data = {
        "auths": {"https://ghcr.io/": {"auth": auth}, "quay.io": {}},
        "credsStore": "desktop",
        "credHelpers": {"123.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login"},
    }
    assert doctor_facts.read_login(data, "ghcr.io", "c") == Login(
        "ghcr.io", "c", "password", "ci", NOW
    )
    assert doctor_facts.read_login(data, "quay.io", "c") == Login("quay.io", "c", "desktop")
    ecr = "123.dkr.ecr.eu-west-1.amazonaws.com"
    assert doctor_facts.read_login(data, ecr, "c") == Login(ecr, "c", "ecr-login")
    assert doctor_facts.read_login(data, "docker.io", "c") == Login("docker.io", "c")
    plain = {"auths": {"127.0.0.1:5001": {"auth": base64.b64encode(b"deployer:pw").decode()}}}
    assert doctor_facts.read_login(plain, "127.0.0.1:5001", "c") == Login(
        "127.0.0.1:5001", "c", "password", "deployer"
    )


def test_the_docker_config_file_follows_docker_config() -> None:
    assert str(doctor_facts.docker_config_file({"DOCKER_CONFIG": "/d"})) == "/d/config.json"


# --- ports


def test_ports_free_ours_another_services_and_a_host_process(example: Config) -> None:
    rules = tuple(
        replace(rule, port=port)
        for rule, port in zip(example.branches[:3], (18080, 18081, 18082), strict=True)
    )
    config = replace(example, branches=rules)
    ours = service("gaia-develop_nginx", 18080, **{
        label("app"): config.app, label("branch"): "develop",
    })  # fmt: skip
    other = service("grafana", 18081)
    traefik = service(config.shared_names.service("traefik"), 80)
    found = doctor.ports(config, [ours, other, traefik], frozenset({18082, 22}))
    assert [rule.match for rule in rules] == ["main", "develop", "feature-*"]
    assert found == [
        Finding("ports", "blocker", "branches[0]/port: 18080 is published by gaia-develop_nginx",
                "give the rule 'main' another port, or `docker service rm gaia-develop_nginx`"),
        Finding("ports", "blocker", "branches[1]/port: 18081 is published by grafana",
                "give the rule 'develop' another port, or `docker service rm grafana`"),
        Finding("ports", "blocker",
                "branches[2]/port: something on the host listens on 18082 (no swarm service)",
                "stop it (`ss -ltnp 'sport = :18082'` names it), or give the rule 'feature-*' "
                "another port"),
        Finding("ports", "ok",
                f"shared/traefik/ports/http: 80 is published by {traefik.name} (its own)"),
        Finding("ports", "ok", "shared/traefik/ports/https: 443 is free"),
    ]  # fmt: skip
    moved = doctor.ports(config, [replace(ours, ports=(18081,))], frozenset())
    assert moved[1] == Finding(
        "ports", "ok", "branches[1]/port: 18081 is published by gaia-develop_nginx (its own)"
    )
    assert moved[0] == Finding("ports", "ok", "branches[0]/port: 18080 is free")
    taken = doctor.ports(example, [replace(other, ports=(443,))], frozenset())
    assert taken[-1] == Finding(
        "ports", "blocker", "shared/traefik/ports/https: 443 is published by grafana",
        "give shared/traefik another port, or `docker service rm grafana`",
    )  # fmt: skip
    no_traefik = {k: v for k, v in example.shared.items() if k != "traefik"}
    assert doctor.ports(replace(example, shared=no_traefik), [], frozenset()) == [
        Finding("ports", "ok", "the config publishes no port")
    ]


# --- memory, disk


def test_memory_and_disk_against_the_branches_planned(example: Config) -> None:
    branches = len(example.branches)
    tasks = len(example.shared) + sum(doctor.tasks_per_branch(example, r) for r in example.branches)
    need = tasks * 128
    small = replace(ENGINE, memory=need * 2**20 - 1)
    plan = f"{branches} branches planned, {tasks} tasks at most"
    found = doctor.resources(example, small, 100 * 2**20)
    assert tasks * 128 >= 1024
    assert found[0] == Finding(
        "memory", "warn", f"{(need * 2**20 - 1) / 2**30:.1f} GiB on the host for {plan}",
        f"at 128 MiB a task, they need {need / 1024:.1f} GiB: a larger VM, or fewer branch "
        "rules or replicas",
    )  # fmt: skip
    assert found[1] == Finding(
        "disk", "blocker", "100 MiB free in /var/lib/docker",
        f"free space there (`docker system prune` removes unused images): image pulls need "
        f"1.0 GiB at least, {branches:.1f} GiB for {branches} branches",
    )  # fmt: skip
    roomy = doctor.resources(example, ENGINE, (branches + 1) * 2**30)
    assert roomy[1] == Finding(
        "disk", "ok",
        f"{branches + 1:.1f} GiB free in /var/lib/docker "
        f"({branches:.1f} GiB for {branches} branches)",
    )  # fmt: skip
    assert doctor.resources(example, ENGINE, int(1.5 * 2**30))[1].level == (
        "warn" if branches > 1 else "ok"
    )
    assert doctor.resources(example, ENGINE, None)[1] == Finding(
        "disk", "warn", "the free space in /var/lib/docker could not be read",
        f"check `df -h /var/lib/docker` there: {branches:.1f} GiB for {branches} branches",
    )  # fmt: skip


def test_a_branch_runs_both_colours_and_its_edge(example: Config) -> None:
    rule = example.branches[0]
    colours = 2 * sum(s.replicas for s in example.services.values())
    metrics = any(s.metrics for s in example.services.values())
    assert doctor.tasks_per_branch(example, rule) == (
        colours + example.edge_replicas(rule) + 1 + int(metrics)
    )


# --- IPVS


def test_ipvs_is_needed_only_by_vip_or_ingress(example: Config) -> None:
    assert doctor.ipvs(example, HOST) == Finding(
        "ipvs", "ok", "not needed (endpoint_mode dnsrr, publish_mode host); in the kernel: absent"
    )
    vip = replace(example, swarm=SwarmSettings(endpoint_mode="vip"))
    assert doctor.ipvs(vip, HOST) == Finding(
        "ipvs", "blocker", "endpoint_mode vip, publish_mode host needs IPVS; the kernel has none",
        "set swarm/endpoint_mode: dnsrr and swarm/publish_mode: host (the defaults), or run a "
        "kernel with ip_vs",
    )  # fmt: skip
    ingress = replace(example, swarm=SwarmSettings(publish_mode="ingress"))
    assert doctor.ipvs(ingress, replace(HOST, ipvs_module=True)) == Finding(
        "ipvs", "warn",
        "endpoint_mode dnsrr, publish_mode ingress needs IPVS; the kernel has it as a module, "
        "not loaded",
        "`modprobe ip_vs` there, and name it in /etc/modules-load.d/ so a reboot loads it",
    )  # fmt: skip
    assert doctor.ipvs(ingress, replace(HOST, ipvs_loaded=True)) == Finding(
        "ipvs", "ok", "loaded, as endpoint_mode dnsrr, publish_mode ingress needs"
    )


# --- what the host says


def test_df_and_proc_net_tcp() -> None:
    df = (
        "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
        "/dev/vda1         10255636  6345016   3370004      66% /\n"
    )
    assert doctor_facts.free_bytes(df) == 3370004 * 1024
    assert doctor_facts.free_bytes("") is None
    tcp = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
        "   0: 0100007F:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n"
        "   1: 0100007F:D2F0 0100007F:08AE 01 00000000:00000000 00:00000000 00000000     0\n"
        "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000     0\n"
    )
    assert doctor_facts.listening(tcp) == frozenset({2222, 8080})


def test_nodes_and_the_engine_from_their_json() -> None:
    raw = {
        "ID": "n1", "Description": {"Hostname": "vm1"}, "Status": {"Addr": "10.0.0.1"},
        "Spec": {"Labels": {"edge": "true"}, "Role": "manager", "Availability": "active"},
    }  # fmt: skip
    assert Node.parse(raw) == Node(
        "n1", "vm1", "10.0.0.1", MappingProxyType({"edge": "true"}), "manager", "active"
    )
    info = {"DockerRootDir": "/srv/docker", "MemTotal": 1024, "KernelVersion": "6.1.0"}
    assert Engine.parse({"Version": "24.0.7"}, info) == Engine(
        "24.0.7", "/srv/docker", 1024, "6.1.0"
    )


# --- decide


def test_decide_stops_at_ssh_and_at_an_unreachable_engine(example: Config) -> None:
    login = Login("ghcr.io", "c", "password", "ci")
    refused = Read(SshProbe(255, "Permission denied (publickey)."), login, NOW)
    assert [f.check for f in doctor.decide(example, SSH, refused)] == ["docker cli", "ssh"]
    gone = Read(SshProbe(0, ""), login, NOW, engine_error="cannot reach the Docker engine")
    assert doctor.decide(example, SSH, gone)[2] == Finding(
        "engine", "blocker", "cannot reach the Docker engine",
        "the other checks need the engine: fix this first",
    )  # fmt: skip


def test_decide_leaves_out_what_needs_a_manager(example: Config) -> None:
    login = Login("ghcr.io", "c", "password", "ci")
    worker = {"Swarm": {"LocalNodeState": "active", "ControlAvailable": False}}
    read = Read(SshProbe(0, ""), login, NOW, "28.2.2", info=worker, engine=ENGINE, host=HOST)
    checks = [f.check for f in doctor.decide(example, SSH, read)]
    assert checks == [
        "docker cli", "ssh", "docker", "swarm", "registry", "memory", "disk", "ipvs"
    ]  # fmt: skip
    manager = replace(read, info=MANAGER, nodes=(node("vm1"),))
    assert [f.check for f in doctor.decide(example, SSH, manager)] == [
        "docker cli", "ssh", "docker", "swarm", "node labels", "registry", "ports", "ports",
        "memory", "disk", "ipvs",
    ]  # fmt: skip
    assert doctor.blockers(doctor.decide(example, SSH, read)) == 1


def test_an_ssh_host_that_does_not_forward_the_socket_is_a_warning(example: Config) -> None:
    login = Login("ghcr.io", "c", "password", "ci")
    read = Read(SshProbe(0, ""), login, NOW, "28.2.2", info=MANAGER, engine=ENGINE, host=HOST)
    refused = doctor.decide(example, SSH, replace(read, forwarded=False))
    assert refused[2] == Finding(
        "ssh forward", "warn",
        "deploy@vm1 does not forward /var/run/docker.sock: each Engine API call opens an ssh "
        "session of its own (0.1 s or more each), so deploys are slower",
        "set `AllowTcpForwarding local` (or yes) in the host's sshd_config and reload sshd, "
        "or set swarm.docker_socket to the socket docker listens on there",
    )  # fmt: skip
    assert doctor.blockers(refused) == 0
    forwarded = doctor.decide(example, SSH, replace(read, forwarded=True))[2]
    assert (forwarded.check, forwarded.level) == ("ssh forward", "ok")


@pytest.mark.parametrize("level", ["ok", "warn"])
def test_warnings_do_not_block(level: doctor.Level) -> None:
    assert doctor.blockers([Finding("x", level, "")]) == 0


def test_one_line_per_check_its_fix_beneath_and_the_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = [
        Finding("ssh", "ok", "the local engine: no ssh"),
        Finding("swarm", "blocker", "local is not part of a swarm (state: inactive)",
                "run `docker swarm init` there first"),
        Finding("registry", "warn", "no login for ghcr.io in c", "docker login ghcr.io"),
    ]  # fmt: skip
    assert cli_output.print_diagnosis(Diagnosis("local", found)) == 1
    assert capsys.readouterr().out.splitlines() == [
        "doctor: local",
        "ok      ssh          the local engine: no ssh",
        "BLOCKER swarm        local is not part of a swarm (state: inactive)",
        "                     fix: run `docker swarm init` there first",
        "warn    registry     no login for ghcr.io in c",
        "                     fix: docker login ghcr.io",
        "1 blocker(s), 1 warning(s): a deploy to local would fail; fix the blockers and run "
        "doctor again",
    ]
    assert cli_output.print_diagnosis(Diagnosis("local", [found[0], found[2]])) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "ready: nothing blocks a deploy to local (1 warning(s))"
    )
