"""Rendered stacks follow the Swarm facts of DESIGN.md; golden files pin the develop render.

Update the golden files after a deliberate template change with `make golden`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarm_deploy import config, errors, naming, pipeline, render
from tests.conftest import ROOT
from tests.render_helpers import BRANCHES, RELEASE, SENTINELS, render_branch

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "develop"
STATEFUL = ("postgres", "mongo", "redis", "loki", "prometheus", "grafana", "traefik")


def stacks(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {p: yaml.safe_load(c) for p, c in files.items() if p.startswith("stacks/")}


def services(files: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, name, spec)
        for path, doc in stacks(files).items()
        for name, spec in doc["services"].items()
    ]


@pytest.fixture(scope="module")
def develop(project: pipeline.Project) -> dict[str, str]:
    return render_branch(project, "develop")


def test_golden_files_match_the_develop_render(develop: dict[str, str]) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        for path in GOLDEN.rglob("*"):
            if path.is_file():
                path.unlink()
        render.write(develop, GOLDEN)
    golden = {
        str(p.relative_to(GOLDEN)): p.read_text() for p in sorted(GOLDEN.rglob("*")) if p.is_file()
    }
    assert sorted(golden) == sorted(develop), "run `make golden` after changing templates"
    for path, content in develop.items():
        assert content == golden[path], f"{path} differs from its golden file; `make golden`"


def test_render_writes_every_file_of_the_branch(develop: dict[str, str]) -> None:
    assert sorted(develop) == [
        "grafana/datasources.yml",
        "nginx/maintenance.html",
        "nginx/nginx.conf",
        "prometheus/agent.yml",
        "prometheus/prometheus.yml",
        "promtail/config.yml",
        "relay/haproxy.cfg",
        "stacks/app-blue.yml",
        "stacks/app-green.yml",
        "stacks/edge.yml",
        "stacks/shared.yml",
    ]


@pytest.mark.parametrize("branch", BRANCHES)
def test_services_are_reached_by_dnsrr_and_publish_in_host_mode(
    project: pipeline.Project, branch: str
) -> None:
    for path, name, spec in services(render_branch(project, branch)):
        if spec["deploy"].get("mode") != "global":
            assert spec["deploy"]["endpoint_mode"] == "dnsrr", f"{path} {name}"
        for port in spec.get("ports", []):
            assert port["mode"] == "host", f"{path} {name}"


def test_stateful_shared_services_update_stop_first(develop: dict[str, str]) -> None:
    shared = stacks(develop)["stacks/shared.yml"]["services"]
    for name in STATEFUL:
        assert shared[name]["deploy"]["update_config"]["order"] == "stop-first", name
    # behind Traefik, a new nginx task starts before an old one stops, one at a time
    update = stacks(develop)["stacks/edge.yml"]["services"]["nginx"]["deploy"]["update_config"]
    assert (update["order"], update["parallelism"]) == ("start-first", 1)


def test_secret_names_carry_the_sha256_of_their_value(
    project: pipeline.Project, develop: dict[str, str]
) -> None:
    app_secrets = stacks(develop)["stacks/app-blue.yml"]["secrets"]
    key = SENTINELS["GAIA_SESSION_KEY"].encode()
    assert app_secrets["session_key"] == {
        "external": True,
        "name": "gaia_develop_session_key_" + hashlib.sha256(key).hexdigest()[:10],
    }
    shared_secrets = stacks(develop)["stacks/shared.yml"]["secrets"]
    admin = SENTINELS["GAIA_POSTGRES_ADMIN_PASSWORD"].encode()
    assert shared_secrets["postgres_admin"]["name"] == (
        "gaia_shared_postgres_admin_" + hashlib.sha256(admin).hexdigest()[:10]
    )
    names = [s["name"] for doc in stacks(develop).values() for s in doc.get("secrets", {}).values()]
    names += [
        c["name"] for doc in stacks(develop).values() for c in doc.get("configs", {}).values()
    ]
    for name in names:
        assert re.fullmatch(r"gaia_(develop|shared)_[a-z_]+_[0-9a-f]{10}", name), name


def test_no_secret_value_reaches_a_rendered_file(project: pipeline.Project) -> None:
    for branch in BRANCHES:
        for path, content in render_branch(project, branch).items():
            for value in SENTINELS.values():
                assert value not in content, f"{value} leaked into {path} of {branch}"


def test_each_branch_database_password_is_its_own(project: pipeline.Project) -> None:
    develop = stacks(render_branch(project, "develop"))["stacks/app-blue.yml"]["secrets"]
    feature = stacks(render_branch(project, "feature-1"))["stacks/app-blue.yml"]["secrets"]
    assert develop["pg_password"]["name"].startswith("gaia_develop_pg_password_")
    assert feature["pg_password"]["name"].startswith("gaia_feature-1_pg_password_")
    assert develop["pg_password"]["name"][-10:] != feature["pg_password"]["name"][-10:]


def test_edge_is_routed_by_traefik_for_the_branch_host(develop: dict[str, str]) -> None:
    labels = stacks(develop)["stacks/edge.yml"]["services"]["nginx"]["deploy"]["labels"]
    assert (
        labels["traefik.http.routers.gaia-develop-edge.rule"] == "Host(`develop.gaia.example.com`)"
    )
    assert labels["traefik.http.routers.gaia-develop-edge.tls.certresolver"] == "letsencrypt"
    assert labels["traefik.http.services.gaia-develop-edge.loadbalancer.server.port"] == "80"
    assert labels["traefik.swarm.network"] == "gaia-public"


def test_colour_services_carry_app_branch_colour_labels(develop: dict[str, str]) -> None:
    for colour in naming.COLOURS:
        doc = stacks(develop)[f"stacks/app-{colour}.yml"]
        for name, spec in doc["services"].items():
            for labels in (spec["labels"], spec["deploy"]["labels"]):
                assert labels["swarm-deploy.app"] == "gaia"
                assert labels["swarm-deploy.branch"] == "develop"
                assert labels["swarm-deploy.colour"] == colour
                assert labels["swarm-deploy.service"] == name
                assert labels["swarm-deploy.release"] == RELEASE


def test_promtail_relabels_from_labels_the_stacks_set(develop: dict[str, str]) -> None:
    promtail = yaml.safe_load(develop["promtail/config.yml"])
    scrape = promtail["scrape_configs"][0]
    assert scrape["docker_sd_configs"][0]["host"] == "unix:///var/run/docker.sock"
    set_labels = stacks(develop)["stacks/app-blue.yml"]["services"]["backend"]["labels"]
    sanitized = {re.sub(r"[^a-zA-Z0-9_]", "_", key) for key in set_labels}
    targets = {}
    for rule in scrape["relabel_configs"]:
        source = rule["source_labels"][0]
        if source.startswith("__meta_docker_container_label_"):
            assert source.removeprefix("__meta_docker_container_label_") in sanitized, source
            targets[rule["target_label"]] = source
    assert {"app", "branch", "colour", "service"} <= set(targets)
    docker_sock = stacks(develop)["stacks/shared.yml"]["services"]["promtail"]["volumes"][0]
    assert docker_sock["read_only"] is True


def test_singletons_run_only_in_the_live_colour(project: pipeline.Project) -> None:
    files, _ = pipeline.render(project, "develop", RELEASE, environ=SENTINELS, live_colour="green")
    green = stacks(files)["stacks/app-green.yml"]["services"]
    blue = stacks(files)["stacks/app-blue.yml"]["services"]
    assert green["bot"]["deploy"]["replicas"] == 1
    assert blue["bot"]["deploy"]["replicas"] == 0
    assert blue["backend"]["deploy"]["replicas"] == green["backend"]["deploy"]["replicas"] == 2


def test_nginx_template_follows_the_swarm_dns_facts(develop: dict[str, str]) -> None:
    conf = develop["nginx/nginx.conf"]
    assert "resolver 127.0.0.11 valid=5s" in conf
    assert 'set $upstream "gaia-develop-${colour}_backend:8000";' in conf
    assert "proxy_pass http://$upstream;" in conf
    assert "if (-f /etc/nginx/live/green) {" in conf  # read on every request: no reload
    assert "include live" not in conf
    assert "listen 127.0.0.1:8081;" in conf  # the preview route: only the pipeline reaches it
    assert "server_tokens off;" in conf
    assert "worker_shutdown_timeout" in conf
    assert "set_real_ip_from 10.231.0.0/24;" in conf
    assert "add_header Retry-After 2 always;" in conf
    assert "$connection_upgrade" in conf


def test_a_hostile_branch_name_reaches_yaml_only_quoted(project: pipeline.Project) -> None:
    hostile = BRANCHES[6]
    doc = stacks(render_branch(project, hostile))["stacks/app-blue.yml"]
    # `$` is doubled for compose interpolation; `docker stack config` undoes it (tools tests)
    assert doc["x-labels"]["swarm-deploy.branch"] == hostile.replace("$", "$$")


def nginx_http_directives(conf: str) -> dict[str, str]:
    """The http block's own one-line directives (four spaces deep), by name."""
    return dict(re.findall(r"^    ([a-z_]+) ([^;{]+);$", conf, flags=re.MULTILINE))


def traefik_flags(files: dict[str, str]) -> dict[str, str]:
    command = stacks(files)["stacks/shared.yml"]["services"]["traefik"]["command"]
    return dict(flag.removeprefix("--").split("=", 1) for flag in command)


def relay_timeouts(files: dict[str, str]) -> dict[str, str]:
    return dict(re.findall(r"^    timeout (\w+) (\S+)$", files["relay/haproxy.cfg"], re.MULTILINE))


def test_every_hop_gets_the_limits_of_the_config(project: pipeline.Project) -> None:
    text = (ROOT / "swarm-deploy.yml").read_text() + (
        "\nlimits:\n  body_size: 8m\n  read_timeout: 10m\n  idle_timeout: 2m\n"
        "  data_idle_timeout: 2h\n"
    )
    limited = pipeline.Project(config.parse(text), project.templates)
    files = render_branch(limited, "develop")
    nginx = nginx_http_directives(files["nginx/nginx.conf"])
    assert {key: nginx[key] for key in sorted(nginx) if key.endswith(("_size", "_timeout"))} == {
        "client_body_timeout": "600s",
        "client_header_timeout": "600s",
        "client_max_body_size": "8388608",
        "keepalive_timeout": "120s",
        "proxy_connect_timeout": "3s",
        "proxy_read_timeout": "600s",
        "proxy_send_timeout": "600s",
        "resolver_timeout": "10s",
        "send_timeout": "600s",
    }
    traefik = traefik_flags(files)
    assert {key: value for key, value in traefik.items() if "imeout" in key} == {
        "entrypoints.web.transport.respondingTimeouts.readTimeout": "600s",
        "entrypoints.web.transport.respondingTimeouts.idleTimeout": "120s",
        "entrypoints.websecure.transport.respondingTimeouts.readTimeout": "600s",
        "entrypoints.websecure.transport.respondingTimeouts.idleTimeout": "120s",
        "serversTransport.forwardingTimeouts.idleConnTimeout": "60s",
        # edge/dial_timeout: not a limit of a request, the time a dead nginx task may cost
        "serversTransport.forwardingTimeouts.dialTimeout": "1000ms",
    }
    assert relay_timeouts(files) == {"connect": "5s", "client": "7200s", "server": "7200s"}


def test_the_default_limits_agree_along_the_request_path(develop: dict[str, str]) -> None:
    """Traefik's own defaults (60 s to read a request) would cut what nginx still accepts."""
    nginx = nginx_http_directives(develop["nginx/nginx.conf"])
    traefik = traefik_flags(develop)
    relay = relay_timeouts(develop)
    read, idle = nginx["proxy_read_timeout"], nginx["keepalive_timeout"]
    assert (read, idle, nginx["client_max_body_size"]) == ("300s", "180s", str(32 * 1024**2))
    assert nginx["client_body_timeout"] == read
    for entrypoint in ("web", "websecure"):
        timeouts = f"entrypoints.{entrypoint}.transport.respondingTimeouts"
        assert traefik[f"{timeouts}.readTimeout"] == read
        assert traefik[f"{timeouts}.idleTimeout"] == idle
    # Traefik lets go of an idle connection to nginx before nginx closes it
    assert int(traefik["serversTransport.forwardingTimeouts.idleConnTimeout"][:-1]) < int(idle[:-1])
    assert int(relay["client"][:-1]) >= int(read[:-1])


def test_the_acme_email_reaches_yaml_only_quoted(project: pipeline.Project) -> None:
    text = (
        (ROOT / "swarm-deploy.yml")
        .read_text()
        .replace("acme_email: ops@gaia.example.com", "acme_email: 'o\"p${HOME}s@gaia.example.com'")
    )
    files = render_branch(pipeline.Project(config.parse(text), project.templates), "develop")
    flags = traefik_flags(files)
    # `$` doubled for compose interpolation, which gives the raw value back
    assert flags["certificatesresolvers.letsencrypt.acme.email"] == 'o"p$${HOME}s@gaia.example.com'


def test_promtail_keeps_its_positions_on_a_volume_of_each_node(develop: dict[str, str]) -> None:
    """A restarted Promtail must not ship every container's whole log again."""
    positions = yaml.safe_load(develop["promtail/config.yml"])["positions"]["filename"]
    shared = stacks(develop)["stacks/shared.yml"]
    promtail = shared["services"]["promtail"]
    assert promtail["deploy"]["mode"] == "global"  # one per node, each with its own volume
    mounts = [v for v in promtail["volumes"] if v["type"] == "volume"]
    assert [(v["source"], v["target"]) for v in mounts] == [("promtail", "/var/lib/promtail")]
    assert positions == "/var/lib/promtail/positions.yaml"
    assert shared["volumes"]["promtail"] == {"name": "gaia-shared-promtail"}


def service_networks(files: dict[str, str], names: naming.BranchNames) -> dict[str, set[str]]:
    """Each Swarm service of the branch and the shared stack, and the networks it is on."""
    stack_names = {
        "stacks/shared.yml": "gaia-shared",
        "stacks/edge.yml": names.edge_stack,
        **{f"stacks/app-{c}.yml": names.colour_stack(c) for c in naming.COLOURS},
    }
    result = {}
    for path, doc in stacks(files).items():
        for name, spec in doc["services"].items():
            nets = {doc["networks"][key]["name"] for key in spec.get("networks", [])}
            result[f"{stack_names[path]}_{name}"] = nets
    return result


def test_every_scrape_target_shares_a_network_with_its_prometheus(
    project: pipeline.Project, develop: dict[str, str]
) -> None:
    """A job whose targets its Prometheus cannot reach is a promise the stacks cannot keep."""
    names = project.config.branch("develop").names
    networks = service_networks(develop, names)
    scrapers = {
        "gaia-shared_prometheus": "prometheus/prometheus.yml",
        f"{names.edge_stack}_agent": "prometheus/agent.yml",
    }
    jobs = 0
    for scraper, path in scrapers.items():
        for job in yaml.safe_load(develop[path])["scrape_configs"]:
            discovery = set(job) & {key for key in job if key.endswith("_configs")}
            discovery.discard("relabel_configs")
            assert discovery <= {"static_configs", "dns_sd_configs"}, (path, job["job_name"])
            for sd in job.get("dns_sd_configs", []):
                for target in sd["names"]:
                    service = target.removeprefix("tasks.")
                    assert networks[service] & networks[scraper], (path, target)
                    jobs += 1
    assert jobs == 4  # Traefik, Loki; the backend in blue and in green


def test_the_branch_agent_scrapes_what_services_declare_in_both_colours(
    develop: dict[str, str],
) -> None:
    agent = yaml.safe_load(develop["prometheus/agent.yml"])
    assert agent["remote_write"] == [{"url": "http://gaia-shared_prometheus:9090/api/v1/write"}]
    assert [
        (
            job["job_name"],
            job["metrics_path"],
            job["dns_sd_configs"],
            {rule["target_label"]: rule["replacement"] for rule in job["relabel_configs"]},
        )
        for job in agent["scrape_configs"]
    ] == [
        (
            f"backend-{colour}",
            "/metrics",
            [{"names": [f"tasks.gaia-develop-{colour}_backend"], "type": "A", "port": 8000}],
            {
                "app": "gaia",
                "branch": "develop",
                "job": "backend",
                "service": "backend",
                "colour": colour,
            },
        )
        for colour in naming.COLOURS
    ]
    shared = stacks(develop)["stacks/shared.yml"]["services"]["prometheus"]
    assert "--web.enable-remote-write-receiver" in shared["command"]
    # nothing it scrapes needs the Swarm API any more
    assert [v["target"] for v in shared["volumes"]] == ["/prometheus"]
    edge = stacks(develop)["stacks/edge.yml"]["services"]["agent"]
    assert edge["command"][0] == "--enable-feature=agent"


def test_no_agent_where_no_service_declares_metrics() -> None:
    local = pipeline.Project.load(ROOT / "swarm-deploy.local.yml")
    files, _ = pipeline.render(local, "develop", RELEASE)
    assert "prometheus/agent.yml" not in files
    assert "agent" not in stacks(files)["stacks/edge.yml"]["services"]
    prometheus = stacks(files)["stacks/shared.yml"]["services"]["prometheus"]
    assert "--web.enable-remote-write-receiver" not in prometheus["command"]


def test_a_template_that_names_what_does_not_exist_fails_as_a_render_error(
    project: pipeline.Project,
) -> None:
    """Values reach YAML through `q`: an undefined one is jinja's error, not a traceback."""
    typo = project.templates["stacks/app.yml"] + "x-typo: {{ config.edge.imgae | q }}\n"
    templates = {**project.templates, "stacks/app.yml": typo}
    overridden = pipeline.Project(project.config, templates, {"stacks/app.yml": typo})
    with pytest.raises(errors.RenderError) as failed:
        render_branch(overridden, "develop")
    assert str(failed.value) == (
        "template stacks/app.yml: 'swarm_deploy.config_settings.Edge object' has no attribute "
        "'imgae'; fix the template stacks/app.yml"
    )
    # the same fault in a packaged template: there is no file of the project's to fix
    with pytest.raises(errors.RenderError) as failed:
        render_branch(pipeline.Project(project.config, templates), "develop")
    assert str(failed.value) == (
        "template stacks/app.yml: 'swarm_deploy.config_settings.Edge object' has no attribute "
        "'imgae'; stacks/app.yml is the packaged template: `swarm-deploy templates eject "
        "stacks/app.yml` copies it next to the config to fix it there (and please report it)"
    )
