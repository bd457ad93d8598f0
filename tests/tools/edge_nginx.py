"""The rendered edge nginx, run in Debian's nginx on 127.0.0.1, with backends of the test's own.

Only what ties the config to a container is moved: the listen ports, the pid file, the
maintenance page's directory, and each colour service's upstream (Swarm DNS names become
127.0.0.1 ports of an `EchoBackend`, or, with a `SwarmDns` of the test's, keep their names
and are resolved by it as Swarm's DNS would). Everything a request meets is the rendered
config.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarm_deploy.naming import LIVE_DIR

_UPSTREAM = re.compile(r'set \$upstream "(?P<name>[^"_]*_(?P<service>[^":]+)):\d+";')
_RESOLVER = "resolver 127.0.0.11 "


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run `make tools` (see README)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Echo(BaseHTTPRequestHandler):
    """Answers every method with what it received: method, path, headers, body length."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen: dict[str, Any] = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_length": len(body),
        }
        payload = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class EchoBackend(ThreadingHTTPServer):
    """A colour service stand-in on a free 127.0.0.1 port."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.port = int(self.server_address[1])
        threading.Thread(target=self.serve_forever, daemon=True).start()


class SwarmDns:
    """Swarm's DNS as nginx meets it, on a free 127.0.0.1 UDP port: every A query is
    answered with 127.0.0.1 after `delay` seconds (dockerd answering late), or with
    NXDOMAIN for a name that does not start with one of `known`."""

    def __init__(self, delay: float = 0.0, known: tuple[str, ...] = ("",)) -> None:
        self.delay, self.known = delay, known
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.asked: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                query, client = self.sock.recvfrom(512)
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(query, client), daemon=True).start()

    def _answer(self, query: bytes, client: tuple[str, int]) -> None:
        labels, at = [], 12
        while query[at]:
            labels.append(query[at + 1 : at + 1 + query[at]].decode())
            at += 1 + query[at]
        question = query[12 : at + 5]  # the name, its type and class
        name = ".".join(labels)
        self.asked.append(name)
        time.sleep(self.delay)
        found = any(name.startswith(prefix) for prefix in self.known)
        # header: the query's id; a response, recursion available, NOERROR or NXDOMAIN
        flags = b"\x81\x80" if found else b"\x81\x83"
        header = query[:2] + flags + b"\x00\x01" + (b"\x00\x01" if found else b"\x00\x00")
        answer = b""
        if found:  # a pointer to the question's name, A, IN, TTL 600, 127.0.0.1
            answer = b"\xc0\x0c\x00\x01\x00\x01" + (600).to_bytes(4, "big")
            answer += b"\x00\x04" + socket.inet_aton("127.0.0.1")
        with contextlib.suppress(OSError):  # closed while waiting
            self.sock.sendto(header + b"\x00\x00\x00\x00" + question + answer, client)

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class RunningEdge:
    public: str
    preview: str
    # its nginx.conf, and live/ beside it
    conf: Path

    @property
    def live(self) -> Path:
        return self.conf.parent / "live"


@contextmanager
def world_readable_dir() -> Iterator[Path]:
    """nginx workers run as nobody, who cannot enter pytest's own (0700) temp dirs."""
    path = Path(tempfile.mkdtemp(prefix="swarm-deploy-nginx-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@contextmanager
def serving(conf: Path, probe: str) -> Iterator[None]:
    """A real nginx on `conf`, answering `probe` before the block runs."""
    nginx = subprocess.Popen(
        [tool("nginx"), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                httpx.get(probe, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


@contextmanager
def running_edge(
    files: Mapping[str, str],
    *,
    colour: str | None = None,
    backends: Mapping[str, int] = {},
    dns: SwarmDns | None = None,
) -> Iterator[RunningEdge]:
    """The branch's nginx.conf in a real nginx, its live/ beside it; `colour` is named
    live, as a switch names it. With `dns`, nginx resolves each colour service's name
    there (each answers on its backend's port), as it asks Swarm's DNS in a task."""
    port, preview = free_port(), free_port()
    with world_readable_dir() as workdir:
        conf = (
            files["nginx/nginx.conf"]
            .replace("listen 80 default_server;", f"listen 127.0.0.1:{port} default_server;")
            .replace("listen 127.0.0.1:8081;", f"listen 127.0.0.1:{preview};")
            .replace("pid /tmp/nginx.pid;", f"pid {workdir}/nginx.pid;")
            .replace("/usr/share/nginx/maintenance", str(workdir / "maintenance"))
            .replace(f"{LIVE_DIR}/", f"{workdir}/live/")
        )
        if dns is not None:
            assert _RESOLVER in conf, "the rendered nginx.conf asks Swarm's DNS no more"
            conf = conf.replace(_RESOLVER, f"resolver 127.0.0.1:{dns.port} ")
        conf = _UPSTREAM.sub(
            lambda m: (
                f'set $upstream "{m["name"] if dns else "127.0.0.1"}:'
                f'{backends.get(m["service"], 9)}";'
            ),
            conf,
        )
        (workdir / "nginx.conf").write_text(conf)
        (workdir / "maintenance").mkdir()
        (workdir / "maintenance" / "index.html").write_text(files["nginx/maintenance.html"])
        (workdir / "live").mkdir()
        if colour is not None:
            (workdir / "live" / colour).touch()
        public = f"http://127.0.0.1:{port}"
        with serving(workdir / "nginx.conf", public + "/healthz"):
            yield RunningEdge(public, f"http://127.0.0.1:{preview}", workdir / "nginx.conf")
