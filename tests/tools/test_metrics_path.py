"""The metrics path, run for real: the branch's agent (rendered config and flags, in Debian's
Prometheus) scrapes the example backend's /metrics and writes to the shared Prometheus
(rendered config and flags), where the samples carry app, branch, colour and service.

Moved from the Swarm to 127.0.0.1: the agent's DNS discovery of `tasks.<service>`
becomes the backend's address (and a hostile task's beside it), its remote-write URL the
receiver's, and its scrape interval 1 s. Everything else is what the stacks run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from swarm_deploy import config, pipeline, profiles, template_files
from tests.conftest import ROOT
from tests.tools.edge_nginx import free_port, tool


@contextmanager
def process(argv: list[str], env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def command(files: dict[str, str], stack: str, service: str) -> list[str]:
    doc = yaml.safe_load(files[f"stacks/{stack}.yml"])
    result: list[str] = doc["services"][service]["command"]
    return result


def local_paths(flags: list[str], replacements: dict[str, str]) -> list[str]:
    """The stack's flags with each `--flag=PATH` given in `replacements` moved here."""
    return [
        f"{flag.split('=', 1)[0]}={replacements[flag.split('=', 1)[0]]}"
        if flag.split("=", 1)[0] in replacements
        else flag
        for flag in flags
    ]


class _Hostile(BaseHTTPRequestHandler):
    """A task whose app claims to be another app's, branch's, colour's and service's."""

    def do_GET(self) -> None:
        body = b'spoofed{app="other",branch="main",colour="green",service="frontend"} 1\n'
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def hostile_task() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()


def wait_for(url: str, query: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while True:
        try:
            answer = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5)
        except httpx.TransportError:
            answer = None
        # a Prometheus still starting answers 503 "Service Unavailable", not JSON
        if answer is not None and answer.status_code == 200:
            found: list[dict[str, Any]] = answer.json()["data"]["result"]
            if found:
                return found
        assert time.monotonic() < deadline, f"no {query} at {url} within 90 s"
        time.sleep(0.5)


def test_a_declared_metrics_port_reaches_the_shared_prometheus(tmp_path: Path) -> None:
    data = profiles.merged_data(ROOT / "swarm-deploy.local.yml")
    data["services"]["backend"]["metrics"] = {"port": 8000}
    text = yaml.safe_dump(data, sort_keys=False)
    project = pipeline.Project.of(config.parse(text, root=ROOT), template_files.load(ROOT))
    files, _ = pipeline.render(project, "develop", "0123456789ab")
    backend, receiver, agent_port = free_port(), free_port(), free_port()
    with hostile_task() as hostile:
        received = scrape_through_the_agent(files, tmp_path, backend, hostile, receiver, agent_port)
    labels = received["gaia_info"]
    assert labels.pop("instance") == f"127.0.0.1:{backend}"
    assert labels == {
        "__name__": "gaia_info",
        "app": "gaia",
        "branch": "develop",
        "colour": "blue",
        "job": "backend",
        "service": "backend",
        "version": "0123456789ab",
    }
    # what a task says of itself never passes for another app's or branch's series
    spoofed = received["spoofed"]
    assert spoofed.pop("instance") == f"127.0.0.1:{hostile}"
    assert spoofed == {
        "__name__": "spoofed",
        "app": "gaia",
        "branch": "develop",
        "colour": "blue",
        "job": "backend",
        "service": "backend",
        "exported_app": "other",
        "exported_branch": "main",
        "exported_colour": "green",
        "exported_service": "frontend",
    }


def scrape_through_the_agent(
    files: dict[str, str],
    tmp_path: Path,
    backend: int,
    hostile: int,
    receiver: int,
    agent_port: int,
) -> dict[str, dict[str, str]]:
    """The labels of gaia_info and spoofed, as the shared Prometheus received them."""

    agent = yaml.safe_load(files["prometheus/agent.yml"])
    agent["global"]["scrape_interval"] = "1s"
    for job in agent["scrape_configs"]:
        colour = job["job_name"].removeprefix("backend-")
        task_names = {"names": [f"tasks.gaia-develop-{colour}_backend"], "type": "A", "port": 8000}
        assert job.pop("dns_sd_configs") == [task_names]
        # the blue colour is deployed, with one task; green is not
        targets = [f"127.0.0.1:{backend}", f"127.0.0.1:{hostile}"] if colour == "blue" else []
        job["static_configs"] = [{"targets": targets}]
    agent["remote_write"][0]["url"] = f"http://127.0.0.1:{receiver}/api/v1/write"
    (tmp_path / "agent.yml").write_text(yaml.safe_dump(agent))
    (tmp_path / "prometheus.yml").write_text(files["prometheus/prometheus.yml"])

    shared_flags = local_paths(
        command(files, "shared", "prometheus"),
        {
            "--config.file": str(tmp_path / "prometheus.yml"),
            "--storage.tsdb.path": str(tmp_path / "tsdb"),
        },
    )
    agent_flags = local_paths(
        command(files, "edge", "agent"),
        {
            "--config.file": str(tmp_path / "agent.yml"),
            "--storage.agent.path": str(tmp_path / "wal"),
        },
    )
    prometheus = tool("prometheus")
    app = [sys.executable, str(ROOT / "examples/gaia/backend/app.py")]
    with (
        process(app, {"PORT": str(backend), "APP_COLOUR": "blue", "APP_VERSION": "0123456789ab"}),
        process([prometheus, *shared_flags, f"--web.listen-address=127.0.0.1:{receiver}"]),
        process([prometheus, *agent_flags, f"--web.listen-address=127.0.0.1:{agent_port}"]),
    ):
        url = f"http://127.0.0.1:{receiver}"
        return {name: wait_for(url, name)[0]["metric"] for name in ("gaia_info", "spoofed")}
