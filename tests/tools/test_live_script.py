"""The switch's one command (commands.LIVE_SCRIPT) run for real: sh, curl and Debian's
nginx on the rendered edge config (tests/tools/edge_nginx.py), as `docker exec` runs it
in the branch's nginx.

The argv is the one the deployer sends, minus `docker exec <container>`, with the test's
live/ directory for /etc/nginx/live. Each test checks what nginx serves afterwards
through the public route.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from swarm_deploy import commands, pipeline
from swarm_deploy.edge import COLOUR_HEADER
from tests.render_helpers import conf_from_before_live_files, render_branch
from tests.tools.edge_nginx import EchoBackend, RunningEdge, running_edge, tool

PATHS = ("/api/health", "/health")


@pytest.fixture
def edge(project: pipeline.Project, backend: EchoBackend) -> Iterator[RunningEdge]:
    """develop's nginx serving blue; both colours' services answer on the echo backend."""
    files = render_branch(project, "develop")
    ports = {"backend": backend.port, "frontend": backend.port}
    with running_edge(files, colour="blue", backends=ports) as running:
        yield running


def in_nginx(edge: RunningEdge, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """What `docker exec` would run in the container, here: the argv after the container."""
    assert argv[:3] == ["docker", "exec", "the-nginx"], argv
    path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    return subprocess.run(
        argv[3:], capture_output=True, text=True, env={"PATH": path}, timeout=60, check=False
    )


def switch(
    edge: RunningEdge, colour: str = "green", paths: tuple[str, ...] = PATHS, wait: int = 15
) -> subprocess.CompletedProcess[str]:
    argv = commands.switch_live(
        commands.LOCAL, "the-nginx", str(edge.live), colour,
        wait=wait, route=edge.public, header=COLOUR_HEADER, paths=paths,
    )  # fmt: skip
    return in_nginx(edge, argv)


def named(edge: RunningEdge) -> list[str]:
    return sorted(path.name for path in edge.live.iterdir())


def served(edge: RunningEdge) -> list[str | None]:
    """The colour header each health path answers with, on new connections."""
    return [httpx.get(edge.public + path).headers.get(COLOUR_HEADER) for path in PATHS]


def test_a_switch_renames_the_colour_and_returns_once_the_public_route_serves_it(
    edge: RunningEdge,
) -> None:
    began = time.monotonic()
    done = switch(edge)
    took = time.monotonic() - began
    assert (done.returncode, done.stdout, done.stderr) == (0, "blue", "")
    assert named(edge) == ["green"]
    assert served(edge) == ["green", "green"]
    print(f"\nswitch in a local nginx: {took:.3f}s")


def test_a_switch_keeps_a_keep_alive_connection_open_and_moves_its_next_request(
    edge: RunningEdge,
) -> None:
    """No reload: nginx closes no idle connection (a reload's old workers did, and a
    client that never retries lost its next request)."""
    port = int(edge.public.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", PATHS[0])
        before = connection.getresponse()
        before.read()
        assert (before.status, before.getheader(COLOUR_HEADER)) == (200, "blue")
        assert switch(edge).returncode == 0
        connection.request("GET", PATHS[0])
        after = connection.getresponse()
        after.read()
        assert (after.status, after.getheader(COLOUR_HEADER)) == (200, "green")
    finally:
        connection.close()


def test_a_switch_back_and_forth_leaves_one_colour_named(edge: RunningEdge) -> None:
    assert (switch(edge, "green").stdout, switch(edge, "blue").stdout) == ("blue", "green")
    assert (named(edge), served(edge)) == (["blue"], ["blue", "blue"])


def test_when_both_are_named_green_is_served_and_a_switch_leaves_one(edge: RunningEdge) -> None:
    """The order nginx.conf tests them in, and commands.READ_SCRIPT's."""
    (edge.live / "green").touch()
    assert served(edge) == ["green", "green"]
    done = switch(edge, "blue")
    assert (done.returncode, done.stdout) == (0, "green")
    assert (named(edge), served(edge)) == (["blue"], ["blue", "blue"])


def test_a_path_that_never_answers_from_the_colour_names_the_old_one_again(
    edge: RunningEdge,
) -> None:
    """/healthz is nginx's own: it carries no colour header, whatever live/ names."""
    done = switch(edge, paths=("/api/health", "/healthz"), wait=1)
    assert (done.returncode, done.stdout) == (commands.LIVE_FAILED, "blue")
    assert done.stderr == (
        "after the switch to green, the public route gave /api/health -> green, "
        "/healthz -> no colour header\n"
    )
    assert (named(edge), served(edge)) == (["blue"], ["blue", "blue"])


def test_an_nginx_conf_from_before_live_files_keeps_its_colour_and_the_switch_fails(
    project: pipeline.Project, backend: EchoBackend
) -> None:
    """An edge whose nginx.conf read live/colour.conf on a reload (swarm-deploy before
    the live files) ignores them: the switch sees blue still, names blue again and says
    so; the deploy's repair names blue before its edge deploy brings the new nginx.conf."""
    files = dict(render_branch(project, "develop"))
    files["nginx/nginx.conf"] = conf_from_before_live_files(files["nginx/nginx.conf"])
    ports = {"backend": backend.port, "frontend": backend.port}
    with running_edge(files, backends=ports) as old:
        (old.live / "colour.conf").write_text('set $colour "blue";\n')
        subprocess.run([tool("nginx"), "-c", str(old.conf), "-s", "reload"], check=True)
        for _ in range(100):
            if httpx.get(old.public + PATHS[0]).headers.get(COLOUR_HEADER) == "blue":
                break
            time.sleep(0.05)
        done = switch(old, wait=1)
        assert (done.returncode, done.stdout) == (commands.LIVE_FAILED, "")
        assert done.stderr == (
            "after the switch to green, the public route gave /api/health -> blue, "
            "/health -> blue\n"
        )
        assert named(old) == ["colour.conf"]


def test_a_verified_switch_removes_the_colour_conf_of_before(edge: RunningEdge) -> None:
    (edge.live / "colour.conf").write_text('set $colour "blue";\n')
    assert switch(edge).returncode == 0
    assert named(edge) == ["green"]


def test_with_live_gone_the_switch_says_it_could_not_name_the_colour(edge: RunningEdge) -> None:
    shutil.rmtree(edge.live)
    done = switch(edge)
    assert (done.returncode, done.stdout) == (commands.LIVE_FAILED, "")
    assert re.fullmatch(
        rf"could not name green in {edge.live}: .*{edge.live}/green: "
        "(Directory nonexistent|No such file or directory)\n",
        done.stderr,
    ), done.stderr
    assert served(edge) == [None, None]


def test_naming_no_colour_serves_the_maintenance_page_at_once(edge: RunningEdge) -> None:
    """RewriteLive's "none", and what live/ that named nothing is put back as."""
    done = in_nginx(edge, commands.write_live(commands.LOCAL, "the-nginx", str(edge.live), None))
    assert (done.returncode, done.stdout, done.stderr) == (0, "blue", "")
    assert named(edge) == []
    answers = [httpx.get(edge.public + path) for path in PATHS]
    assert [(a.status_code, a.headers.get(COLOUR_HEADER)) for a in answers] == [(503, None)] * 2


def test_a_switch_from_no_colour_prints_none_before(edge: RunningEdge) -> None:
    (edge.live / "blue").unlink()
    done = switch(edge)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert served(edge) == ["green", "green"]


def test_one_command_reads_what_nginx_serves_then_the_colour_live_names(
    edge: RunningEdge,
) -> None:
    """commands.READ_SCRIPT (edge.read_nginx parses it): the public route's headers, then
    the colour after its marker line; none leaves nothing after the marker."""
    live = str(edge.live)
    url = edge.public + "/api/health"
    read = in_nginx(edge, commands.read_live(commands.LOCAL, "the-nginx", live, url))
    headers, marker, colour = read.stdout.partition(f"--- {live}\n")
    assert headers.startswith("HTTP/1.1 200 ")
    assert f"{COLOUR_HEADER}: blue" in headers.splitlines()
    assert (marker, colour) == (f"--- {live}\n", "blue")
    (edge.live / "blue").unlink()
    alone = in_nginx(edge, commands.read_live(commands.LOCAL, "the-nginx", live, None))
    assert alone.stdout == f"--- {live}\n"
