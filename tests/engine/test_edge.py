"""The branch's nginx on the real Swarm: a config nginx refuses never reaches the edge.

The edge updates stop-first (a host-mode port cannot be held twice on one node): an
nginx that exits on its new config would refuse every connection until Swarm rolled it
back. The deploy tests the config with `nginx -t` in the edge's image first.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import docker
from bench.testbed import copy_project

from swarm_deploy import template_files
from swarm_deploy.naming import BranchNames
from tests.engine.conftest import APP, PORTS, Project, Traffic, answers

BRANCH = "feature/edge"
PORT = PORTS[BRANCH]
NAMES = BranchNames.derive(APP, BRANCH)


def broken_copy(project: Project, to: Path) -> Path:
    """The tests' project with one nginx syntax error in its override of the packaged
    nginx.conf: a missing `;`."""
    copy_project(project.root, to)
    template = to / "nginx" / "nginx.conf"
    template.parent.mkdir()
    text = template_files.packaged("nginx/nginx.conf")
    assert "    server_tokens off;\n" in text
    template.write_text(text.replace("    server_tokens off;\n", "    server_tokens off\n"))
    config = to / "swarm-deploy.yml"
    config.write_text(project.config.read_text())
    return config


def edge_state() -> dict[str, Any]:
    """The edge service's spec and version, its stack's configs, and any job left over."""
    client = docker.from_env()
    try:
        service = client.api.inspect_service(NAMES.edge_service)
        configs = client.api.configs(
            filters={"label": f"com.docker.stack.namespace={NAMES.edge_stack}"}
        )
        jobs = client.api.services(filters={"name": f"{APP}-{NAMES.slug}-nginx-t"})
        return {
            "spec": service["Spec"],
            "version": service["Version"],
            "configs": sorted(c["Spec"]["Name"] for c in configs),
            "jobs": [j["Spec"]["Name"] for j in jobs],
        }
    finally:
        client.close()


def test_a_config_nginx_refuses_stops_the_deploy_and_the_edge_keeps_serving(
    project: Project, tmp_path: Path
) -> None:
    first = project.deploy(BRANCH, "e1")
    assert first.returncode == 0, first.stdout + first.stderr
    before = edge_state()
    assert before["jobs"] == []
    broken = broken_copy(project, tmp_path / "broken")
    with Traffic(PORT) as traffic:
        result = project.deploy(BRANCH, "e2", config=broken)
    print(f"a refused nginx config under load: {traffic.outage()}")
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1, result.stdout
    assert (
        f"] nginx      test the new nginx config of {NAMES.edge_stack} with nginx -t" in failed[0]
    )
    rendered = broken.parent / ".swarm-deploy" / NAMES.slug / "nginx" / "nginx.conf"
    line = rendered.read_text().splitlines().index("    default_type application/octet-stream;")
    assert (
        "deploy failed: nginx -t in 127.0.0.1:5000/testbed/nginx:bookworm refused the new "
        f"nginx config {APP}_{NAMES.slug}_nginx_conf_"
    ) in result.stderr
    # nginx's own words, from the job's logs: `<time> [emerg] <pid>#<tid>: ...`
    assert re.search(
        r'\n\S+ \S+ \[emerg\] \d+#\d+: invalid number of arguments in "server_tokens" '
        rf"directive in /etc/nginx/nginx\.conf:{line + 1}\n",
        result.stderr,
    ), result.stderr
    assert "nginx: configuration file /etc/nginx/nginx.conf test failed" in result.stderr
    assert "the edge was not touched" in result.stderr
    assert edge_state() == before, "the edge's spec, its configs: all as they were, no job left"
    assert answers(PORT).json()["version"] == "e1"
    assert traffic.count("new") > 100
    assert traffic.count("keepalive") > 50
    assert traffic.failures("new", "keepalive") == {}
