"""Every rendered file passes its real validator: docker stack config, nginx -t, promtool.

These need the docker CLI (v28, no daemon), Debian's nginx and promtool: `make tools`
installs them. A missing tool fails the test; nothing here is skipped.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from swarm_deploy import pipeline, render
from swarm_deploy.datakinds import KINDS
from tests.conftest import ROOT
from tests.render_helpers import BRANCHES, render_branch
from tests.tools.edge_nginx import running_edge, tool
from tests.unit.test_render_tls import DNS
from tests.unit.test_render_tls import rendered as rendered_tls


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture(scope="module", params=BRANCHES)
def rendered(
    request: pytest.FixtureRequest,
    project: pipeline.Project,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    render.write(render_branch(project, request.param), out)
    return out


def test_every_stack_passes_docker_stack_config(rendered: Path) -> None:
    docker = tool("docker")
    for stack in sorted((rendered / "stacks").glob("*.yml")):
        result = run(docker, "stack", "config", "--compose-file", str(stack))
        assert result.returncode == 0, f"{stack.name}: {result.stderr}"
        resolved = yaml.safe_load(result.stdout)
        for spec in resolved.get("configs", {}).values():
            assert Path(spec["file"]).is_file(), (
                f"{stack.name}: config file {spec['file']} is missing"
            )


def test_nginx_config_passes_nginx_t(rendered: Path) -> None:
    result = run(tool("nginx"), "-t", "-c", str(rendered / "nginx" / "nginx.conf"))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_prometheus_config_passes_promtool(rendered: Path) -> None:
    result = run(
        tool("promtool"), "check", "config", str(rendered / "prometheus" / "prometheus.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_metrics_agent_config_passes_promtool_in_agent_mode(rendered: Path) -> None:
    agent = rendered / "prometheus" / "agent.yml"
    result = run(tool("promtool"), "check", "config", "--agent", str(agent))
    assert result.returncode == 0, result.stdout + result.stderr


def test_relay_config_passes_haproxy_c(rendered: Path) -> None:
    result = run(tool("haproxy"), "-c", "-f", str(rendered / "relay" / "haproxy.cfg"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_interpolation_gives_back_the_raw_hostile_branch_name(
    project: pipeline.Project, tmp_path: Path
) -> None:
    hostile = BRANCHES[6]
    render.write(render_branch(project, hostile), tmp_path)
    result = run(
        tool("docker"), "stack", "config", "--compose-file", str(tmp_path / "stacks/app-blue.yml")
    )
    assert result.returncode == 0, result.stderr
    labels = yaml.safe_load(result.stdout)["services"]["backend"]["deploy"]["labels"]
    assert labels["swarm-deploy.branch"] == hostile


def test_nginx_answers_503_with_retry_after_while_no_colour_is_live(
    project: pipeline.Project,
) -> None:
    with running_edge(render_branch(project, "develop")) as edge:
        with httpx.Client(base_url=edge.public, timeout=5) as client:
            health = client.get("/healthz")
            assert health.status_code == 200
            assert health.text == "ok\n"
            for path in ("/", "/api/health"):
                page = client.get(path)
                assert page.status_code == 503
                assert page.headers["retry-after"] == "2"
                assert "is being deployed" in page.text
                assert page.headers["server"] == "nginx"  # no version: server_tokens off
        preview_page = httpx.get(f"{edge.preview}/api/health", timeout=5)
        assert preview_page.status_code == 503  # no colour named in the header


def test_example_frontend_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    result = run(tool("nginx"), "-t", "-c", str(ROOT / "examples/gaia/frontend/nginx.conf"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_data_job_script_parses(kind: str, tmp_path: Path) -> None:
    """As far as this machine goes for MongoDB (no server here): every shell script passes
    `sh -n`, and the MongoDB scripts, which mongosh runs as JavaScript, `node --check`."""
    access = KINDS[kind]
    shells = [access.shell] if access.shell else [access.ensure, access.drop]
    checks = [("sh", "-n", "-c", script) for script in shells]
    if access.shell:
        for name, script in (("ensure", access.ensure), ("drop", access.drop)):
            path = tmp_path / f"{kind}-{name}.js"
            path.write_text(script)
            checks.append((tool("node"), "--check", str(path)))
    for argv in checks:
        result = run(*argv)
        assert result.returncode == 0, f"{argv[:2]}: {result.stderr}"


def test_stacks_with_a_wildcard_certificate_by_dns_01_pass_docker_stack_config(
    project: pipeline.Project, tmp_path: Path
) -> None:
    """Traefik's environment, secrets, other ports and each router's tls.domains labels."""
    render.write(rendered_tls(project, DNS, "feature/x"), tmp_path)
    for name in ("shared.yml", "edge.yml"):
        result = run(
            tool("docker"), "stack", "config", "--compose-file", str(tmp_path / "stacks" / name)
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"
    resolved = yaml.safe_load(
        run(
            tool("docker"), "stack", "config", "--compose-file", str(tmp_path / "stacks/shared.yml")
        ).stdout
    )
    environment = resolved["services"]["traefik"]["environment"]
    assert environment["CF_DNS_API_TOKEN_FILE"] == "/run/secrets/cloudflare_token"  # noqa: S105
