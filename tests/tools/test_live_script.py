"""The switch's one command (commands.LIVE_SCRIPT) run for real: sh, curl and Debian's
nginx on the rendered edge config (tests/tools/edge_nginx.py), as `docker exec` runs it
in the branch's nginx.

The argv is the one the deployer sends, minus `docker exec <container>`; `nginx` on PATH
is the installed nginx told which config it runs (`-c`), as /etc/nginx/nginx.conf is
in the container. Each test checks what nginx serves afterwards through the public route.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from swarm_deploy import commands, pipeline
from swarm_deploy.edge import COLOUR_HEADER, live_line
from tests.render_helpers import render_branch
from tests.tools.edge_nginx import EchoBackend, RunningEdge, running_edge, tool

PATHS = ("/api/health", "/health")
BLUE, GREEN = live_line("blue"), live_line("green")


@pytest.fixture(scope="module")
def backend() -> Iterator[EchoBackend]:
    server = EchoBackend()
    yield server
    server.shutdown()


@pytest.fixture
def edge(project: pipeline.Project, backend: EchoBackend) -> Iterator[RunningEdge]:
    """develop's nginx serving blue; both colours' services answer on the echo backend."""
    files = render_branch(project, "develop")
    ports = {"backend": backend.port, "frontend": backend.port}
    with running_edge(files, colour="blue", backends=ports) as running:
        yield running


def live_file(edge: RunningEdge) -> Path:
    return edge.conf.parent / "live" / "colour.conf"


def in_nginx(edge: RunningEdge, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """What `docker exec` would run in the container, here: the argv after the container."""
    assert argv[:3] == ["docker", "exec", "the-nginx"], argv
    bin_dir = edge.conf.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    nginx = bin_dir / "nginx"
    nginx.write_text(f'#!/bin/sh\nexec {tool("nginx")} -c {edge.conf} "$@"\n')
    nginx.chmod(0o755)
    path = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    return subprocess.run(
        argv[3:], capture_output=True, text=True, env={"PATH": path}, timeout=60, check=False
    )


def switch(
    edge: RunningEdge, content: str, paths: tuple[str, ...] = PATHS, wait: int = 15
) -> subprocess.CompletedProcess[str]:
    argv = commands.switch_live(
        commands.LOCAL, "the-nginx", str(live_file(edge)), content,
        colour="green", wait=wait, route=edge.public, header=COLOUR_HEADER, paths=paths,
    )  # fmt: skip
    return in_nginx(edge, argv)


def served(edge: RunningEdge) -> list[str | None]:
    """The colour header each health path answers with, on new connections."""
    return [httpx.get(edge.public + path).headers.get(COLOUR_HEADER) for path in PATHS]


def nginx_said(stderr: str) -> str:
    """nginx's messages without the time and pid its error_log (stderr) puts first."""
    return re.sub(r"(?m)^[\d/]+ [\d:]+ \[(\w+)\] \d+#\d+: ", r"nginx: [\1] ", stderr)


def eventually(look: Callable[[], object], expected: object) -> None:
    """A reload is graceful: the old workers take new connections for a moment longer."""
    for _ in range(100):
        if look() == expected:
            return
        time.sleep(0.05)
    assert look() == expected


def test_a_switch_writes_tests_reloads_and_returns_once_the_public_route_serves_it(
    edge: RunningEdge,
) -> None:
    began = time.monotonic()
    done = switch(edge, GREEN)
    took = time.monotonic() - began
    assert (done.returncode, done.stdout, done.stderr) == (0, BLUE, "")
    assert live_file(edge).read_text() == GREEN
    assert served(edge) == ["green", "green"]
    print(f"\nswitch in a local nginx: {took:.3f}s")


def test_nginx_refusing_the_new_file_leaves_the_old_one_served(edge: RunningEdge) -> None:
    done = switch(edge, "bogus;\n")
    file = live_file(edge)
    assert (done.returncode, done.stdout) == (commands.LIVE_FAILED, BLUE)
    assert nginx_said(done.stderr) == (
        f"nginx -t failed after writing {file}:\n"
        f'nginx: [emerg] unknown directive "bogus" in {file}:1\n'
        f"nginx: configuration file {edge.conf} test failed\n"
    )
    assert file.read_text() == BLUE
    assert served(edge) == ["blue", "blue"]


def test_a_path_that_never_answers_from_the_colour_puts_the_old_file_back(
    edge: RunningEdge,
) -> None:
    """/healthz is nginx's own: it carries no colour header, whatever the file says."""
    done = switch(edge, GREEN, paths=("/api/health", "/healthz"), wait=1)
    assert (done.returncode, done.stdout) == (commands.LIVE_FAILED, BLUE)
    assert done.stderr == (
        "after the switch to green, the public route gave /api/health -> green, "
        "/healthz -> no colour header\n"
    )
    assert live_file(edge).read_text() == BLUE
    assert served(edge) == ["blue", "blue"]


def test_with_nginx_gone_the_file_is_put_back_and_both_reloads_are_reported(
    edge: RunningEdge,
) -> None:
    """Its master stopped (the pid file names no process): the file nginx starts with
    again names the colour it served."""
    pid = edge.conf.parent / "nginx.pid"
    subprocess.run([tool("nginx"), "-c", str(edge.conf), "-s", "stop"], check=True)
    for _ in range(100):
        if not pid.exists():
            break
        time.sleep(0.05)
    done = switch(edge, GREEN)
    file = live_file(edge)
    refused = (
        f'nginx: [notice] signal process started\nnginx: [error] invalid PID number "" in "{pid}"'
    )
    assert (done.returncode, done.stdout) == (commands.LIVE_FAILED, BLUE)
    assert nginx_said(done.stderr) == (
        f"nginx -s reload failed:\n{refused}\n"
        f"putting the previous {file} back: nginx -s reload failed:\n{refused}\n"
    )
    assert file.read_text() == BLUE


def test_a_rewrite_to_no_colour_serves_the_maintenance_page(edge: RunningEdge) -> None:
    """RewriteLive's "none", and what a file that never existed is put back as."""
    argv = commands.write_live(commands.LOCAL, "the-nginx", str(live_file(edge)), live_line(None))
    done = in_nginx(edge, argv)
    assert (done.returncode, done.stdout, done.stderr) == (0, BLUE, "")
    assert live_file(edge).read_text() == ""

    def answers() -> list[tuple[int, str | None]]:
        got = [httpx.get(edge.public + path) for path in PATHS]
        return [(a.status_code, a.headers.get(COLOUR_HEADER)) for a in got]

    eventually(answers, [(503, None)] * 2)


def test_the_previous_file_is_printed_as_it_was_even_when_missing(edge: RunningEdge) -> None:
    live_file(edge).unlink()
    done = switch(edge, GREEN)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert served(edge) == ["green", "green"]


def test_one_command_reads_what_nginx_serves_then_what_its_file_names(
    edge: RunningEdge,
) -> None:
    """commands.READ_SCRIPT (edge.read_nginx parses it): the public route's headers, then
    the file after its marker line; a missing file leaves nothing after the marker."""
    file = live_file(edge)
    url = edge.public + "/api/health"
    read = in_nginx(edge, commands.read_live(commands.LOCAL, "the-nginx", str(file), url))
    headers, marker, content = read.stdout.partition(f"--- {file}\n")
    assert headers.startswith("HTTP/1.1 200 ")
    assert f"{COLOUR_HEADER}: blue" in headers.splitlines()
    assert (marker, content) == (f"--- {file}\n", BLUE)
    file.unlink()
    alone = in_nginx(edge, commands.read_live(commands.LOCAL, "the-nginx", str(file), None))
    assert alone.stdout == f"--- {file}\n"
