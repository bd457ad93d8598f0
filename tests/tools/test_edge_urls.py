"""URLs through the rendered edge nginx, run for real: redirects keep what the client sent,
the app sees the public host, port and scheme, and X-Forwarded-* count only from the proxy.

Traefik's network is played by 127.0.0.2 (the config's `edge.public_subnet`): a client
bound to it is the proxy in front; one on 127.0.0.1 reaches the published port directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from swarm_deploy import pipeline
from tests.conftest import ROOT
from tests.render_helpers import render_branch
from tests.tools.edge_nginx import (
    EchoBackend,
    RunningEdge,
    free_port,
    running_edge,
    serving,
    world_readable_dir,
)

PROXY = "127.0.0.2"
# what a client may send to fool the app about its URL or address
FORGED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example.net",
    "X-Forwarded-Port": "443",
    "X-Forwarded-For": "6.6.6.6",
    "X-Forwarded-Prefix": "/evil",
    "X-Forwarded-Ssl": "on",
    "Forwarded": "for=6.6.6.6;host=evil.example.net;proto=https",
}


def behind_proxy(project: pipeline.Project, subnet: str) -> pipeline.Project:
    cfg = project.config
    return pipeline.Project(
        dataclasses.replace(cfg, edge=dataclasses.replace(cfg.edge, public_subnet=subnet)),
        project.templates,
    )


@pytest.fixture(scope="module")
def edge(project: pipeline.Project, backend: EchoBackend) -> Iterator[RunningEdge]:
    """develop of the production config (Traefik in front), its proxy played by 127.0.0.2."""
    files = render_branch(behind_proxy(project, f"{PROXY}/32"), "develop")
    ports = {"backend": backend.port, "frontend": backend.port}
    with running_edge(files, colour="blue", backends=ports) as running:
        yield running


def client(edge: RunningEdge, source: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=edge.public, transport=transport, timeout=5)


def seen(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
@pytest.mark.parametrize(
    ("source", "headers"),
    [
        ("127.0.0.1", {"Host": "127.0.0.1:18080"}),
        (PROXY, {"Host": "develop.gaia.example.com", "X-Forwarded-Proto": "https"}),
    ],
    ids=["published-port", "behind-traefik"],
)
def test_a_path_without_its_slash_is_redirected_keeping_url_and_method(
    edge: RunningEdge, method: str, source: str, headers: dict[str, str]
) -> None:
    with client(edge, source) as http:
        answer = http.request(method, "/api?page=2", headers=headers, content=b"x" * 10)
    # relative: the client resolves it against the scheme, host and port it used
    assert (answer.status_code, answer.headers["location"]) == (308, "/api/?page=2")


def test_a_direct_client_is_believed_nothing_it_says_about_its_url(
    edge: RunningEdge,
) -> None:
    with client(edge) as http:
        got = seen(http.post("/api/items", headers={"Host": "127.0.0.1:18080", **FORGED}))
    assert got["method"] == "POST"
    assert got["path"] == "/api/items"
    headers = got["headers"]
    assert headers["host"] == "127.0.0.1:18080"
    assert headers["x-forwarded-host"] == "127.0.0.1:18080"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == "18080"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-real-ip"] == "127.0.0.1"
    for forged in ("forwarded", "x-forwarded-prefix", "x-forwarded-ssl"):
        assert forged not in headers


def test_a_direct_client_on_the_default_port_gets_port_80(edge: RunningEdge) -> None:
    with client(edge) as http:
        headers = seen(http.get("/api/", headers={"Host": "develop.gaia.localhost"}))["headers"]
    assert (headers["host"], headers["x-forwarded-port"]) == ("develop.gaia.localhost", "80")


def test_the_proxy_in_front_is_believed(edge: RunningEdge) -> None:
    traefik_sends = {
        "Host": "develop.gaia.example.com",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "develop.gaia.example.com",
        "X-Forwarded-Port": "443",
        "X-Forwarded-For": "203.0.113.7",
    }
    with client(edge, PROXY) as http:
        headers = seen(http.get("/api/", headers=traefik_sends))["headers"]
    assert headers["host"] == "develop.gaia.example.com"
    assert headers["x-forwarded-host"] == "develop.gaia.example.com"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-port"] == "443"
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.2"
    assert headers["x-real-ip"] == "203.0.113.7"


def test_without_traefik_no_client_is_believed_whatever_its_address(
    backend: EchoBackend,
) -> None:
    local = pipeline.Project.load(ROOT / "swarm-deploy.local.yml")
    files, _ = pipeline.render(local, "develop", "0123456789ab")
    assert "set_real_ip_from" not in files["nginx/nginx.conf"]
    ports = {"backend": backend.port, "frontend": backend.port}
    with running_edge(files, colour="blue", backends=ports) as edge:
        for source in ("127.0.0.1", PROXY):
            with client(edge, source) as http:
                answer = http.get("/api/", headers={"Host": "127.0.0.1:18080", **FORGED})
            headers = seen(answer)["headers"]
            assert headers["x-forwarded-proto"] == "http", source
            assert headers["x-forwarded-port"] == "18080", source
            assert headers["x-forwarded-for"] == source, source


def test_the_example_frontends_own_redirects_keep_the_public_url() -> None:
    """A hop behind the edge listens on its own port (8080): an absolute redirect leaks it."""
    port = free_port()
    with world_readable_dir() as workdir:
        (workdir / "www" / "docs").mkdir(parents=True)
        (workdir / "www" / "docs" / "index.html").write_text("docs\n")
        conf = (ROOT / "examples/gaia/frontend/nginx.conf").read_text()
        conf = (
            conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
            .replace("root /srv/www;", f"root {workdir}/www;")
            .replace("pid /tmp/nginx.pid;", f"pid {workdir}/nginx.pid;")
        )
        (workdir / "nginx.conf").write_text(conf)
        with serving(workdir / "nginx.conf", f"http://127.0.0.1:{port}/health"):
            answer = httpx.get(
                f"http://127.0.0.1:{port}/docs", headers={"Host": "develop.gaia.example.com"}
            )
    assert (answer.status_code, answer.headers["location"]) == (301, "/docs/")
