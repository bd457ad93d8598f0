"""The Engine API wrapper, through its public reads, against an Engine API of the test's
own on 127.0.0.1: what a dropped connection and a missing object become."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from swarm_deploy import commands, engine
from swarm_deploy.errors import TargetError


class FakeEngineApi(BaseHTTPRequestHandler):
    """Answers /version and /info; drops the connection of the first `drops` service
    listings; knows no node."""

    drops = 0

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path.endswith("/services") and FakeEngineApi.drops > 0:
            FakeEngineApi.drops -= 1
            self.close_connection = True  # no answer at all: a connection cut mid-call
            return
        if path == "/version":
            self.answer(200, {"ApiVersion": "1.45", "Version": "27.0.0"})
        elif path.endswith("/info"):
            self.answer(200, {"Swarm": {"LocalNodeState": "active"}})
        elif path.endswith("/services"):
            self.answer(200, [{"ID": "s1"}])
        else:
            self.answer(404, {"message": f"{path.rsplit('/', 1)[-1]} not found"})

    def answer(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None: ...


@pytest.fixture
def swarm(monkeypatch: pytest.MonkeyPatch) -> Iterator[engine.Swarm]:
    monkeypatch.setattr(time, "sleep", lambda _: None)  # the pause before a retry
    FakeEngineApi.drops = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEngineApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = engine.Swarm(f"tcp://127.0.0.1:{server.server_address[1]}")
    yield client
    client.close()
    server.shutdown()
    server.server_close()


def test_a_dropped_connection_is_retried_once(swarm: engine.Swarm) -> None:
    FakeEngineApi.drops = 1
    assert swarm.services({}) == [{"ID": "s1"}]
    FakeEngineApi.drops = 2
    with pytest.raises(TargetError) as lost:
        swarm.services({})
    assert str(lost.value) == (
        f"lost the connection to {swarm.target} while listing services (('Connection "
        "aborted.', RemoteDisconnected('Remote end closed connection without response'))); "
        "run the same command again: it picks up from what the target holds"
    )


def test_missing_is_none_only_when_that_is_fine(swarm: engine.Swarm) -> None:
    assert swarm.service("x") is None
    with pytest.raises(TargetError) as failed:
        swarm.node("n1")
    assert str(failed.value) == f"inspecting a node failed on {swarm.target}: n1 not found"


def test_the_ssh_forward_lives_on_its_own_connection_and_dies_with_its_stdin() -> None:
    assert commands.ssh_forward("ssh://deploy@vm1:2200", "/home/me/d.sock", "/run/d.sock") == [
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "-o", "ExitOnForwardFailure=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
        "-L", "/home/me/d.sock:/run/d.sock", "-p", "2200", "--", "deploy@vm1", "cat",
    ]  # fmt: skip


def test_an_ssh_that_cannot_forward_says_why_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssh exits before the socket appears (a refused key, an unknown host): its words."""
    fake = tmp_path / "ssh"
    fake.write_text("#!/bin/sh\necho 'root@vm1: Permission denied (publickey).' >&2\nexit 255\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    before = set(Path(tempfile.gettempdir()).glob("swarm-deploy-*"))
    with pytest.raises(TargetError) as refused:
        engine.SshForward("ssh://root@vm1", "/var/run/docker.sock")
    assert str(refused.value) == (
        "ssh to ssh://root@vm1 did not forward /var/run/docker.sock: "
        "root@vm1: Permission denied (publickey)."
    )
    assert set(Path(tempfile.gettempdir()).glob("swarm-deploy-*")) == before


class Forward(engine.SshForward):
    """A forward that is up, or whose ssh exited and cannot start again."""

    def __init__(self, alive: bool) -> None:
        self.socket = Path("/run/f/docker.sock")
        self.alive = alive

    def up(self) -> bool:
        return self.alive


def test_docker_commands_for_a_forwarded_target_run_through_its_socket(tmp_path: Path) -> None:
    executor = engine.Executor(tmp_path)
    executor.forwards["ssh://root@vm1"] = Forward(alive=True)
    manager = commands.docker("ssh://root@vm1", "service", "ls")
    assert executor.routed(manager) == [
        "docker", "--host", "unix:///run/f/docker.sock", "service", "ls",
    ]  # fmt: skip
    other_node = commands.docker("ssh://root@vm2", "exec", "c1", "true")
    assert executor.routed(other_node) == other_node
    assert executor.routed(commands.docker("local", "info")) == ["docker", "info"]
    assert executor.routed(["ssh", "--host", "ssh://root@vm1"]) == [
        "ssh",
        "--host",
        "ssh://root@vm1",
    ]
    executor.forwards["ssh://root@vm1"] = Forward(alive=False)
    assert executor.routed(manager) == manager, "a forward that cannot start again: over ssh"
