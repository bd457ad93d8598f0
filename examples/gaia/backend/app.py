"""gaia backend: a stdlib HTTP service that says which colour, version and database it is.

GET /health, /api/health  200 "ok" (or GAIA_HEALTH_STATUS, to rehearse a bad release)
GET /api/visits           INCR <REDIS_PREFIX>visits as the branch's Redis user: {"visits": n}
GET /, /api/...           JSON: app, branch, colour, version, database, whether the
                          database password was read (never the password itself)
GET /metrics              Prometheus text: requests this task answered. The edge does not
                          route it; the branch's metrics agent scrapes it (`metrics:`)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

PORT = int(os.environ.get("PORT", "8000"))
HEALTH_STATUS = int(os.environ.get("GAIA_HEALTH_STATUS", "200"))
# /api/health alone (what the gate checks through nginx), while the container's own
# HEALTHCHECK on /health passes: a release that runs but is not fit to serve
API_HEALTH_STATUS = int(os.environ.get("GAIA_API_HEALTH_STATUS", str(HEALTH_STATUS)))
# keep answering this long after SIGTERM, so requests already routed here finish
STOP_DELAY = float(os.environ.get("GAIA_STOP_DELAY", "0"))


def read_secret(env_var: str) -> str | None:
    path = os.environ.get(env_var)
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


DB_PASSWORD = read_secret("PGPASSWORD_FILE")
REDIS_PASSWORD = read_secret("REDIS_PASSWORD_FILE")


class RedisError(Exception):
    """Redis answered with an error (or not at all)."""


def redis(*command: str) -> bytes:
    """One command as the branch's Redis user, on a fresh connection (RESP, stdlib only)."""
    url = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    auth = ("AUTH", os.environ.get("REDIS_USER", "default"), REDIS_PASSWORD or "")
    try:
        with socket.create_connection((url.hostname, url.port or 6379), timeout=3) as conn:
            stream = conn.makefile("rwb")
            for args in (auth, command):
                encoded = [arg.encode() for arg in args]
                stream.write(b"*%d\r\n" % len(encoded))
                stream.write(b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in encoded))
                stream.flush()
                reply = stream.readline().rstrip(b"\r\n")
                if not reply or reply.startswith(b"-"):
                    raise RedisError(reply[1:].decode(errors="replace") or "no reply")
    except OSError as exc:
        raise RedisError(str(exc)) from None
    return reply[1:]

INFO = {
    "app": os.environ.get("APP_NAME", "gaia"),
    "service": os.environ.get("APP_SERVICE", "backend"),
    "branch": os.environ.get("APP_BRANCH", ""),
    "colour": os.environ.get("APP_COLOUR", ""),
    "version": os.environ.get("APP_VERSION", "dev"),
    "database": os.environ.get("PGDATABASE", ""),
    "database_user": os.environ.get("PGUSER", ""),
    "database_password_loaded": DB_PASSWORD is not None,
    "redis_user": os.environ.get("REDIS_USER", ""),
    "redis_prefix": os.environ.get("REDIS_PREFIX", ""),
    "redis_password_loaded": REDIS_PASSWORD is not None,
}


class Counter:
    """A number the handler threads add to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


SERVED = Counter()


def metrics() -> bytes:
    return (
        "# HELP gaia_requests_total Requests this task answered.\n"
        "# TYPE gaia_requests_total counter\n"
        f"gaia_requests_total {SERVED.value}\n"
        "# HELP gaia_info The release this task runs.\n"
        "# TYPE gaia_info gauge\n"
        # no colour, branch or service label: the branch's metrics agent adds those
        f'gaia_info{{version="{INFO["version"]}"}} 1\n'
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gaia-backend"

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        SERVED.add()
        if self.path == "/metrics":
            self._send(200, metrics(), "text/plain; version=0.0.4")
        elif self.path in ("/health", "/api/health"):
            status = HEALTH_STATUS if self.path == "/health" else API_HEALTH_STATUS
            self._send(status, b"ok\n" if status == 200 else b"unhealthy\n", "text/plain")
        elif self.path == "/api/visits":
            try:
                body, status = {"visits": int(redis("INCR", f"{INFO['redis_prefix']}visits"))}, 200
            except RedisError as exc:
                body, status = {"error": f"redis: {exc}"}, 503
            self._send(status, json.dumps(body).encode() + b"\n", "application/json")
        else:
            self._send(
                200, json.dumps({**INFO, "path": self.path}).encode() + b"\n", "application/json"
            )

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Gaia-Colour", INFO["colour"])
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        sys.stdout.write(f"{self.address_string()} {format % args}\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # the default backlog of 5 drops SYNs under load: 1 s stalls for clients
    request_queue_size = 1024


def migrate() -> int:
    """The release's migrations (this example has none to apply), run once per deploy
    before the new colour starts. GAIA_MIGRATE_FAIL=1 rehearses a failing one."""
    if os.environ.get("GAIA_MIGRATE_FAIL") == "1":
        print("migrate: failed on purpose (GAIA_MIGRATE_FAIL=1)", flush=True)
        return 1
    if os.environ.get("PGPASSWORD_FILE") and DB_PASSWORD is None:
        print("migrate: cannot read the database password file", flush=True)
        return 1
    print(
        f"migrate: {INFO['database'] or 'no database'} is at schema v1, nothing to do", flush=True
    )
    return 0


def main() -> None:
    if sys.argv[1:] == ["migrate"]:
        sys.exit(migrate())
    server = Server(("0.0.0.0", PORT), Handler)  # noqa: S104 - a container's service port

    def stop(signum: int, frame: object) -> None:
        def later() -> None:
            time.sleep(STOP_DELAY)
            server.shutdown()

        threading.Thread(target=later, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"gaia backend {INFO['version']} ({INFO['colour']}) on :{PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
