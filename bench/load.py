"""Steady HTTP load with every request accounted for: for the tests and the benchmark.

Three kinds of client send GETs at a fixed rate each (open loop: a slow answer does
not slow the sender down, as with real users):

  new        a new TCP connection per request (`Connection: close`)
  keepalive  one reused connection; a request that fails on a reused connection is
             sent again once on a new one, as browsers do for idempotent requests
  stubborn   one reused connection, never retried: an nginx restarted or reloaded
             closes idle connections, so these see errors users with browsers would not

    python -m bench.load --url http://127.0.0.1:18080/api/ --seconds 60 --out samples.jsonl

An https URL is checked against --cafile; --connect sends to another address than the
URL's host names (as curl's --resolve), e.g. --url https://develop.example.test/api/
--connect 127.0.0.1:18443: SNI, the certificate's name and Host stay the URL's.

runs until --seconds pass or SIGTERM, then writes one JSON line per request:
{"t": wall-clock start (epoch seconds), "kind", "ms": latency, "status": int or null,
"error", "retried", "said": what a non-200 answer's body says (its <title>, else its
start), to tell nginx's maintenance page from Traefik's own answer}.
Only the standard library: it runs beside the deploy without a virtualenv of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import ssl
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

TIMEOUT = 5.0
KINDS = ("new", "keepalive", "stubborn")


@dataclass(frozen=True)
class Sample:
    t: float
    kind: str
    ms: float
    status: int | None
    error: str | None
    retried: bool = False
    said: str | None = None

    @property
    def failed(self) -> bool:
        return self.status != 200


class Closed(Exception):
    """The server closed the connection before answering."""


# what a failed request raises: refused, reset, timed out, cut short, unreadable
FAILURES = (TimeoutError, OSError, asyncio.IncompleteReadError, Closed, ValueError)


def gist(body: bytes) -> str:
    """What a body says in a few words: its HTML <title>, else its first 60 characters."""
    text = " ".join(body[:2000].decode("utf-8", "replace").split())
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE)
    return title.group(1) if title else text[:60]


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str, keep: bool
) -> tuple[int, bool, bytes]:
    """One GET on an open connection: (status, whether the server will close it, body)."""
    connection = "keep-alive" if keep else "close"
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: {connection}\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise Closed("closed before the status line")
    status = int(status_line.split()[1])
    length, closing = None, not keep
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            closing = True
    if length is not None:
        body = await reader.readexactly(length)
    else:
        body = await reader.read()
        closing = True
    return status, closing, body


class Load:
    """Runs the clients until stopped; `samples` holds every request's outcome."""

    def __init__(
        self,
        url: str,
        new: float,
        keepalive: Sequence[float],
        stubborn: Sequence[float],
        connect: str | None = None,
        cafile: Path | None = None,
    ):
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = ssl.create_default_context(cafile=cafile) if parts.scheme == "https" else None
        self.port = parts.port or (443 if self.tls else 80)
        self.address = (self.host, self.port)
        if connect:
            host, _, port = connect.rpartition(":")
            self.address = (host, int(port))
        self.path = parts.path or "/"
        self.rates = {"new": new}
        self.keepalive, self.stubborn = list(keepalive), list(stubborn)
        self.samples: list[Sample] = []
        # latencies from the monotonic clock; start times on the wall clock, so that other
        # processes (the benchmark marking its deploys) can line events up with requests
        self.epoch = time.time() - time.monotonic()
        self.stopping = asyncio.Event()

    def _record(
        self,
        kind: str,
        began: float,
        status: int | None,
        error: str | None,
        retried: bool = False,
        body: bytes = b"",
    ) -> None:
        now = time.monotonic()
        self.samples.append(
            Sample(
                round(self.epoch + began, 4),
                kind,
                round((now - began) * 1000, 2),
                status,
                error,
                retried,
                gist(body) if status not in (None, 200) else None,
            )
        )

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.address
        return await asyncio.wait_for(
            asyncio.open_connection(
                host, port, ssl=self.tls, server_hostname=self.host if self.tls else None
            ),
            TIMEOUT,
        )

    async def _one_new(self) -> None:
        began = time.monotonic()
        writer = None
        try:
            reader, writer = await self._open()
            status, _, body = await asyncio.wait_for(
                _exchange(reader, writer, self.host, self.path, False), TIMEOUT
            )
            self._record("new", began, status, None, body=body)
        except FAILURES as exc:
            self._record("new", began, None, type(exc).__name__)
        finally:
            if writer is not None:
                writer.close()

    async def _new_connections(self, rate: float) -> None:
        pending: set[asyncio.Task[None]] = set()
        interval, due = 1.0 / rate, time.monotonic()
        while not self.stopping.is_set():
            task = asyncio.create_task(self._one_new())
            pending.add(task)
            task.add_done_callback(pending.discard)
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await asyncio.gather(*pending)

    async def _reused(self, kind: str, rate: float, retry: bool) -> None:
        interval, due = 1.0 / rate, time.monotonic()
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while not self.stopping.is_set():
            began = time.monotonic()
            for attempt in (0, 1):
                fresh = conn is None
                try:
                    if conn is None:
                        conn = await self._open()
                    status, closing, body = await asyncio.wait_for(
                        _exchange(*conn, self.host, self.path, True), TIMEOUT
                    )
                    self._record(kind, began, status, None, retried=attempt == 1, body=body)
                    if closing:
                        conn[1].close()
                        conn = None
                    break
                except FAILURES as exc:
                    if conn is not None:
                        conn[1].close()
                        conn = None
                    # only a reused connection may have been closed under us: retry that once
                    if retry and attempt == 0 and not fresh and not isinstance(exc, TimeoutError):
                        continue
                    self._record(kind, began, None, type(exc).__name__, retried=attempt == 1)
                    break
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        if conn is not None:
            conn[1].close()

    async def run(self, seconds: float) -> list[Sample]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.call_later(seconds, self.stopping.set)
        clients = [self._new_connections(self.rates["new"])] if self.rates["new"] else []
        clients += [self._reused("keepalive", r, retry=True) for r in self.keepalive]
        clients += [self._reused("stubborn", r, retry=False) for r in self.stubborn]
        await asyncio.gather(*clients)
        return self.samples


@dataclass(frozen=True)
class Summary:
    kind: str
    requests: int
    failed: int
    retried: int
    p50_ms: float
    p99_ms: float


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summarize(
    samples: Iterable[Sample], windows: Sequence[tuple[float, float]] | None = None
) -> list[Summary]:
    """Per kind of client; with `windows`, only requests that began inside one of them."""
    chosen = [
        s for s in samples if windows is None or any(start <= s.t <= end for start, end in windows)
    ]
    result = []
    for kind in KINDS:
        mine = [s for s in chosen if s.kind == kind]
        if not mine:
            continue
        latencies = [s.ms for s in mine if not s.failed]
        result.append(
            Summary(
                kind,
                len(mine),
                sum(s.failed for s in mine),
                sum(s.retried for s in mine),
                round(percentile(latencies, 50), 1),
                round(percentile(latencies, 99), 1),
            )
        )
    return result


def read(path: Path) -> list[Sample]:
    return [Sample(**json.loads(line)) for line in path.read_text().splitlines() if line]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--new", type=float, default=150, help="requests/s on new connections")
    parser.add_argument(
        "--keepalive",
        type=float,
        nargs="*",
        default=[50, 50],
        help="requests/s of each retrying keep-alive client",
    )
    parser.add_argument(
        "--stubborn",
        type=float,
        nargs="*",
        default=[50],
        help="requests/s of each keep-alive client that never retries",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--connect", metavar="HOST:PORT", help="where to connect instead")
    parser.add_argument("--cafile", type=Path, help="the roots an https URL is checked against")
    args = parser.parse_args()
    load = Load(args.url, args.new, args.keepalive, args.stubborn, args.connect, args.cafile)
    samples = asyncio.run(load.run(args.seconds))
    args.out.write_text("".join(json.dumps(asdict(s)) + "\n" for s in samples))


if __name__ == "__main__":
    main()
