"""examples/gaia runs as its Dockerfiles run it: the backend answers, the bot stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT

GAIA = ROOT / "examples" / "gaia"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(script: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class FakeRedis:
    """One RESP connection at a time: records each command, answers AUTH and INCR."""

    auth_reply = b"+OK"

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.commands: list[list[bytes]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.server.accept()
            with conn, conn.makefile("rwb") as stream:
                while header := stream.readline():
                    count = int(header[1:])
                    args = [stream.read(int(stream.readline()[1:]) + 2)[:-2] for _ in range(count)]
                    self.commands.append(args)
                    stream.write(self.auth_reply + b"\r\n" if args[0] == b"AUTH" else b":7\r\n")
                    stream.flush()


@pytest.fixture
def redis() -> FakeRedis:
    return FakeRedis()


@pytest.fixture
def backend(tmp_path: Path, redis: FakeRedis) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    password = tmp_path / "pg_password"
    password.write_text("not-printed-anywhere\n")
    redis_password = tmp_path / "redis_password"
    redis_password.write_text("redis-pass-0c1d\n")
    proc = start(
        GAIA / "backend" / "app.py",
        {
            "PORT": str(port),
            "APP_COLOUR": "green",
            "APP_VERSION": "abc123",
            "APP_BRANCH": "develop",
            "PGDATABASE": "gaia_develop_main",
            "PGPASSWORD_FILE": str(password),
            "GAIA_HEALTH_STATUS": "200",
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "REDIS_USER": "gaia_develop",
            "REDIS_PREFIX": "gaia:develop:",
            "REDIS_PASSWORD_FILE": str(redis_password),
        },
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    yield url, proc
    proc.kill()
    proc.wait()


def test_backend_reports_colour_version_and_database(
    backend: tuple[str, subprocess.Popen[str]],
) -> None:
    url, _ = backend
    health = httpx.get(url + "/api/health", timeout=2)
    assert (health.status_code, health.text) == (200, "ok\n")
    info = httpx.get(url + "/api/", timeout=2).json()
    assert info["colour"] == "green"
    assert info["version"] == "abc123"
    assert info["database"] == "gaia_develop_main"
    assert info["database_password_loaded"] is True
    assert "not-printed-anywhere" not in httpx.get(url + "/", timeout=2).text


def test_backend_counts_visits_in_redis_as_the_branch_user(
    backend: tuple[str, subprocess.Popen[str]], redis: FakeRedis
) -> None:
    url, _ = backend
    assert httpx.get(url + "/api/visits", timeout=5).json() == {"visits": 7}
    assert redis.commands == [
        [b"AUTH", b"gaia_develop", b"redis-pass-0c1d"],
        [b"INCR", b"gaia:develop:visits"],
    ]
    redis.auth_reply = b"-WRONGPASS invalid username-password pair or user is disabled."
    refused = httpx.get(url + "/api/visits", timeout=5)
    assert refused.status_code == 503
    assert refused.json() == {
        "error": "redis: WRONGPASS invalid username-password pair or user is disabled."
    }


def test_backend_stops_on_sigterm(backend: tuple[str, subprocess.Popen[str]]) -> None:
    _, proc = backend
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0


def test_backend_can_rehearse_a_failing_health_check() -> None:
    port = free_port()
    proc = start(GAIA / "backend" / "app.py", {"PORT": str(port), "GAIA_HEALTH_STATUS": "500"})
    try:
        for _ in range(100):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert response.status_code == 500
    finally:
        proc.kill()
        proc.wait()


def test_bot_ticks_and_stops_on_sigterm() -> None:
    proc = start(GAIA / "bot" / "bot.py", {"GAIA_BOT_INTERVAL": "0.1", "APP_COLOUR": "blue"})
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "gaia bot dev (blue) started" in output
    assert "gaia bot blue tick 1" in output
    assert "stopped after" in output


@pytest.mark.parametrize("image", ["backend", "frontend", "bot"])
def test_dockerfiles_take_a_base_image_argument(image: str) -> None:
    dockerfile = (GAIA / image / "Dockerfile").read_text()
    lines = dockerfile.splitlines()
    arg = next(i for i, line in enumerate(lines) if line.startswith("ARG BASE_IMAGE="))
    assert lines[arg + 1] == "FROM ${BASE_IMAGE}"
    assert "# syntax=" not in dockerfile  # would make BuildKit reach for a registry


def test_backend_serves_prometheus_metrics(backend: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = backend

    def scrape() -> list[str]:
        answer = httpx.get(url + "/metrics", timeout=2)
        assert answer.headers["content-type"] == "text/plain; version=0.0.4"
        return answer.text.splitlines()

    def served(lines: list[str]) -> int:
        return int(next(line for line in lines if line.startswith("gaia_requests_total "))[20:])

    before = scrape()
    assert 'gaia_info{version="abc123"} 1' in before
    httpx.get(url + "/api/", timeout=2)
    assert served(scrape()) == served(before) + 2  # /api/ and this scrape
