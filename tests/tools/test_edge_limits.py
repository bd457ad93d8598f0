"""limits.body_size, enforced by the rendered edge nginx run for real."""

from __future__ import annotations

import httpx

from swarm_deploy import config, pipeline
from tests.conftest import ROOT
from tests.render_helpers import render_branch
from tests.tools.edge_nginx import EchoBackend, running_edge


def test_nginx_takes_bodies_up_to_limits_body_size_and_refuses_larger(
    project: pipeline.Project,
) -> None:
    text = (ROOT / "swarm-deploy.yml").read_text() + "\nlimits:\n  body_size: 1k\n"
    files = render_branch(pipeline.Project(config.parse(text), project.templates), "develop")
    backend = EchoBackend()
    try:
        with running_edge(files, colour="blue", backends={"backend": backend.port}) as edge:
            fits = httpx.post(f"{edge.public}/api/upload", content=b"x" * 1024, timeout=5)
            too_large = httpx.post(f"{edge.public}/api/upload", content=b"x" * 1025, timeout=5)
    finally:
        backend.shutdown()
    assert (fits.status_code, fits.json()["body_length"]) == (200, 1024)
    assert too_large.status_code == 413
