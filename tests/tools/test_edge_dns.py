"""The edge's nginx asks Swarm's DNS for a colour's tasks on the request path (names
valid 5 s), run for real with a DNS server of the test's standing in for dockerd's.

dockerd answers late when it is busy: in a CI run (stop 23) every request that waited on
one re-resolution got the maintenance page 2.1 s after the first of them asked, when
nginx gave up after 2 s (resolver_timeout). A request waits for a late answer instead.
"""

from __future__ import annotations

import time

import httpx

from swarm_deploy import pipeline
from tests.render_helpers import render_branch
from tests.tools.edge_nginx import EchoBackend, SwarmDns, running_edge

# later than the 2 s that failed in CI, sooner than nginx's resend of a query (5 s)
LATE = 3.0


def get_api(project: pipeline.Project, backend: EchoBackend, dns: SwarmDns) -> httpx.Response:
    files = render_branch(project, "develop")
    ports = {"backend": backend.port, "frontend": backend.port}
    try:
        with running_edge(files, colour="blue", backends=ports, dns=dns) as edge:
            return httpx.get(f"{edge.public}/api/", timeout=30)
    finally:
        dns.close()


def test_a_request_waits_for_a_late_answer_from_swarms_dns(
    project: pipeline.Project, backend: EchoBackend
) -> None:
    dns = SwarmDns(delay=LATE)
    began = time.monotonic()
    answer = get_api(project, backend, dns)
    took = time.monotonic() - began
    assert answer.status_code == 200, f"{took:.1f}s: {answer.status_code} {answer.text[:120]}"
    assert answer.json()["path"] == "/api/"
    assert dns.asked == ["gaia-develop-blue_backend"]
    assert took >= LATE  # the answer was waited for, not cached from before


def test_a_name_swarms_dns_does_not_know_gets_the_maintenance_page(
    project: pipeline.Project, backend: EchoBackend
) -> None:
    """A colour with no healthy task has no name in Swarm's DNS."""
    answer = get_api(project, backend, SwarmDns(known=("gaia-develop-green_",)))
    assert answer.status_code == 503
    assert "<title>gaia is starting</title>" in answer.text
